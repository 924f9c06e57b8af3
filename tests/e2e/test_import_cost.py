"""DAG files import the operators, the sensor and the link on every parse: beyond what
``import airflow.sdk`` loads anyway, they must bring in no HTTP stack, no Hub client and no
emulator. Checked in a fresh interpreter, where nothing else has loaded those modules already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("requests", "urllib3", "httpx", "fastapi", "uvicorn", "starlette")
OURS_HEAVY = ("airflow_provider_spaces.hub.client", "airflow_provider_spaces.emulator")


STEPS = {
    "provider": (
        "import airflow_provider_spaces.operators.spaces\n"
        "import airflow_provider_spaces.operators.window\n"
        "import airflow_provider_spaces.operators.guard\n"
        "import airflow_provider_spaces.sensors.spaces\n"
        "import airflow_provider_spaces.links.spaces\n"
        "import airflow_provider_spaces.leases\n"
        "import airflow_provider_spaces.window\n"
        "import airflow_provider_spaces.guard"
    ),
    "dag_files": (
        "import importlib.util, pathlib\n"
        "for path in sorted(pathlib.Path('dags_examples').glob('*.py')):\n"
        "    spec = importlib.util.spec_from_file_location(path.stem, path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    assert module.dag.dag_id == path.stem"
    ),
    "guard_file": (
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('guard', 'dags_examples/space_guard.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.dag.dag_id == 'space_guard'"
    ),
    "client": "import airflow_provider_spaces.hub.client",
}


@pytest.fixture(scope="module")
def added() -> dict[str, list[str]]:
    """Run the steps in order in one fresh interpreter; return the modules each one loaded.

    The first step counts from ``import airflow.sdk``, which every DAG file pays anyway.
    """
    lines = ["import json, sys", "import airflow.sdk", "loaded = {}"]
    for name, statement in STEPS.items():
        lines += [
            "before = set(sys.modules)",
            statement,
            f"loaded[{name!r}] = sorted(set(sys.modules) - before)",
        ]
    lines.append("print(json.dumps(loaded))")
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def heavy(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name.split(".")[0] in HEAVY
        or any(name == ours or name.startswith(ours + ".") for ours in OURS_HEAVY)
    ]


def test_operators_sensor_link_window_and_guard_add_no_http_stack_client_or_emulator(added):
    assert "airflow_provider_spaces.guard" in added["provider"]
    assert heavy(added["provider"]) == []


def test_parsing_the_example_dags_adds_no_http_stack_client_or_emulator(added):
    assert heavy(added["dag_files"]) == []


def test_parsing_the_guard_dag_adds_no_http_stack_client_or_emulator(added):
    assert heavy(added["guard_file"]) == []


def test_the_checker_sees_the_client_when_it_is_loaded(added):
    assert "airflow_provider_spaces.hub.client" in heavy(added["client"])
