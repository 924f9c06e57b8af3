"""DAG files import this package on every parse: the light modules must not pull in an HTTP stack,
and the hub package must not pull in Airflow. Checked in a fresh interpreter, where nothing else
has imported those libraries already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("requests", "httpx", "fastapi", "uvicorn", "starlette", "urllib3")
LIGHT_MODULES = [
    "airflow_provider_spaces.hub",
    "airflow_provider_spaces.hub.models",
    "airflow_provider_spaces.hub.errors",
    "airflow_provider_spaces.hub.validation",
    "airflow_provider_spaces.hub.waiting",
    "airflow_provider_spaces.hub.catalog",
    "airflow_provider_spaces.hub.costs",
    "airflow_provider_spaces.hub.retry",
    "airflow_provider_spaces.hub.auth",
    "airflow_provider_spaces.hub.protocol",
    "airflow_provider_spaces.hub.pacing",
]


def loaded_after(statement: str) -> set[str]:
    """Run ``statement`` in a fresh interpreter and return the top-level packages it loaded."""
    script = (
        f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout))


def test_light_modules_import_no_http_stack_and_no_airflow() -> None:
    # One fresh interpreter imports the modules one by one and notes what each one brought in.
    script = (
        "import importlib, json, sys\n"
        f"forbidden = {sorted({*HEAVY, 'airflow'})!r}\n"
        "found = {}\n"
        f"for name in {LIGHT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    loaded = {m.split('.')[0] for m in sys.modules}\n"
        "    found[name] = sorted(loaded.intersection(forbidden))\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    found = json.loads(done.stdout)
    assert found == {name: [] for name in LIGHT_MODULES}


def test_the_client_is_loaded_on_first_use_only() -> None:
    loaded = loaded_after(
        "import airflow_provider_spaces.hub as hub\n"
        "assert 'airflow_provider_spaces.hub.client' not in sys.modules\n"
        "client_class = hub.SpacesClient\n"
        "assert client_class.__name__ == 'SpacesClient'"
    )

    assert "requests" in loaded
    assert "airflow" not in loaded


def test_an_unknown_attribute_of_the_package_is_an_attribute_error() -> None:
    import airflow_provider_spaces.hub as hub

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        hub.NoSuchThing  # noqa: B018 - the lookup itself is what is tested


def test_every_exported_name_resolves() -> None:
    import airflow_provider_spaces.hub as hub

    assert all(getattr(hub, name) is not None for name in hub.__all__)
