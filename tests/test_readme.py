"""The README's Python snippets run as a reader would run them.

A snippet that opens ``with DAG(`` is a whole DAG file: it loads into a DagBag with no import
error. The others are the lines of a DAG that the README says they are: run in their order, in
one namespace (the first one holds the imports), inside a ``with DAG(...)`` block, they build
tasks without an error. The quick start block stays the clone line and the two commands.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def snippets(lang: str, text: str = README) -> list[str]:
    """Return the bodies of the fenced blocks of ``lang`` in ``text``, in order."""
    return [match["body"] for match in _FENCE.finditer(text) if match["lang"] == lang]


PYTHON = snippets("python")
# A snippet whose first line names a test file is a pytest file a reader saves and runs.
TEST_FILES = [code for code in PYTHON if re.match(r"# (test_\w+\.py)", code)]
DAG_FILES = [code for code in PYTHON if "with DAG(" in code]
DAG_LINES = [code for code in PYTHON if "with DAG(" not in code and code not in TEST_FILES]


def _dagbag_class() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1 keeps it with the models
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag


def test_the_readme_has_dag_files_and_dag_lines_to_check():
    assert len(DAG_FILES) >= 3
    assert len(DAG_LINES) >= 10


@pytest.mark.parametrize("code", PYTHON, ids=[f"snippet-{i}" for i in range(len(PYTHON))])
def test_every_python_snippet_parses(code):
    ast.parse(code)


def test_the_dag_snippets_load_into_a_dagbag(tmp_path):
    for position, code in enumerate(DAG_FILES):
        (tmp_path / f"readme_dag_{position}.py").write_text(code)

    bag = _dagbag_class()(dag_folder=str(tmp_path), safe_mode=False)

    assert bag.import_errors == {}
    assert {Path(dag.fileloc).name for dag in bag.dags.values()} == {
        f"readme_dag_{position}.py" for position in range(len(DAG_FILES))
    }
    assert {
        "demo_app_evening",
        "demo_app_morning",
        "demo_app_night_cpu",
        "fleet_sleep_times",
        "my_training_window",
    } <= set(bag.dags)
    window = bag.dags["my_training_window"]
    assert window.get_task("downgrade").is_teardown
    assert window.get_task("publish").upstream_task_ids >= {"train", "downgrade"}


def test_the_operator_snippets_build_tasks_in_a_dag_in_the_readmes_order():
    namespace: dict[str, Any] = {}

    with DAG("readme_snippets", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        for code in DAG_LINES:
            exec(compile(code, "README.md", "exec"), namespace)

    # One task per operator and sensor snippet; the teardown hangs off the upgrade it names.
    assert {type(task).__name__ for task in dag.tasks} == {
        "SpaceHardwareUpgradeOperator",
        "SpaceHardwareDowngradeOperator",
        "SpacePauseOperator",
        "SpaceRestartOperator",
        "SpaceSleepTimeOperator",
        "SpaceSecretsOperator",
        "SpaceVariablesOperator",
        "SpaceDuplicateOperator",
        "SpaceStageSensor",
    }
    assert dag.get_task("downgrade").is_teardown
    assert dag.get_task("downgrade").upstream_task_ids == {"upgrade"}
    assert dag.get_task("wait_for_the_app").deferrable is True


def test_the_quick_start_is_the_clone_line_and_two_commands():
    quick_start = README.split("## Quick start", 1)[1]

    first_block = snippets("bash", quick_start)[0]

    assert first_block.splitlines() == [
        "git clone <this repository> && cd airflow-provider-spaces",
        "python3 dev.py demo",
        "python3 dev.py test",
    ]


def test_the_readme_has_a_test_file_for_offline_testing():
    assert len(TEST_FILES) >= 1


@pytest.mark.parametrize("code", TEST_FILES, ids=[f"test-file-{i}" for i in range(len(TEST_FILES))])
def test_the_offline_test_files_pass_as_a_reader_would_run_them(code, tmp_path):
    name = re.match(r"# (test_\w+\.py)", code)[1]
    (tmp_path / name).write_text(code)

    # A pytest of its own, in a folder of its own: only the fixture this package registers helps it.
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Exit code 0 also means at least one test ran (none collected is exit code 5).
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
