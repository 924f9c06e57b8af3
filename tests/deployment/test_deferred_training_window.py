"""The GPU training window in a real Airflow deployment, its waits deferred to the triggerer.

Airflow's api-server, scheduler, dag-processor and triggerer run as processes of their own, on
SQLite with the LocalExecutor (``scripts/airflow_stack.py``), against an emulated Hub on
127.0.0.1 in this test's process, its clock 60 times faster than real time. ``[operators]
default_deferrable`` is on for every component, so the example DAG runs unchanged, its sensor and
its downgrade waiting in the triggerer instead of a worker slot.

The slowest test of the suite (a minute or two): one DAG run, start to end. The DAG's downgrade
has retries, which also cover a race in Airflow's scheduler with a task whose trigger fires soon
after it deferred: the worker's late report of the deferral can be taken for the end of the
resumed try, which is then failed and run again. The downgrade reads the Space first, so its
second try sends nothing twice.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "gpu_training_window"
SPACE = "demo/gpu-trainer"
GPU = "a10g-large"
FREE = "cpu-basic"
CONN_ID = "spaces_deployment"
SPEED = 60.0
DEFERRING = "deferring the wait to the triggerer"


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(speed=SPEED) as emulated:
        # Ten minutes of build and half a minute of start, emulated: ten real seconds, longer than
        # Airflow takes on a loaded machine to start the sensor after the upgrade, so that the
        # sensor always finds the GPU still building and defers.
        emulated.add_space(SPACE, hardware=FREE, build_seconds=600, start_seconds=30)
        yield emulated


@pytest.fixture
def stack(tmp_path: Path, hub: HubEmulator, airflow_db: Path, airflow_stack: ModuleType) -> Iterator[Any]:
    home, dags = tmp_path / "home", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags_examples" / "gpu_training_window.py", dags)
    # The suite's migrated database spares the stack a migration of its own.
    shutil.copy(airflow_db, home / "airflow.db")
    connection = {"conn_type": "huggingface_spaces", "host": hub.url, "password": hub.write_token}
    env = {
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
        "SPACES_WINDOW_SPACE_ID": SPACE,
        "SPACES_WINDOW_GPU": GPU,
        "SPACES_WINDOW_CONN_ID": CONN_ID,
        "SPACES_WINDOW_WORK_SECONDS": "1",
        "SPACES_WINDOW_POLL_SECONDS": "0.5",
        # Generous in real time: Airflow's own steps between a deferral and its resumption take seconds.
        "SPACES_WINDOW_GPU_TIMEOUT_SECONDS": "180",
        "SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS": "180",
        # The api-server answers its first task slowly on a loaded machine (it imports as it goes);
        # the workers' default of 5 s would fail the task before it starts.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
        # Nothing may default to the real Hub.
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    with airflow_stack.AirflowStack(home=home, dags_folder=dags, env=env) as running:
        yield running


def first_run(stack: Any, timeout: float = 120) -> str:
    """Return the run the scheduler makes for the DAG's latest interval, once unpaused at creation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = stack.api("GET", f"/dags/{DAG_ID}/dagRuns").get("dag_runs", [])
        if runs:
            return str(runs[0]["dag_run_id"])
        time.sleep(1)
    return str(stack.trigger(DAG_ID))


def triggerer_log(stack: Any, run_id: str, task_id: str) -> str:
    """Return what the triggerer wrote while it ran the task's trigger: ``<task log>.trigger.<job>.log``."""
    folder = stack.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    written = sorted(folder.glob("attempt=1.log.trigger.*.log"))
    assert written, f"the triggerer wrote no log for {task_id} in {folder}"
    return "\n".join(path.read_text() for path in written)


def failure_report(stack: Any, run_id: str, tasks: dict[str, Any]) -> str:
    """Say which tasks did not succeed, with the end of their logs, for a failed run's assertion."""
    lines = [f"{task}: {ti['state']}" for task, ti in tasks.items()]
    for task, ti in tasks.items():
        if ti["state"] == "failed":
            lines.append(f"--- log of {task} ---\n{stack.task_log(DAG_ID, run_id, task)[-3000:]}")
    # A task whose process dies leaves its reason in the scheduler's output (its LocalExecutor
    # workers supervise the tasks), not in the task's own log.
    lines.append(f"--- end of the scheduler's output ---\n{stack.output('scheduler')[-6000:]}")
    return "\n".join(lines)


def test_the_training_window_waits_in_the_triggerer_and_gives_the_gpu_back(stack, hub):
    stack.wait_for_dag(DAG_ID)
    run_id = first_run(stack)

    state = stack.wait_for_run(DAG_ID, run_id, timeout=300)

    tasks = stack.task_instances(DAG_ID, run_id)
    assert state == "success", failure_report(stack, run_id, tasks)
    assert {task: ti["state"] for task, ti in tasks.items()} == {
        "take_gpu_lease": "success",
        "upgrade": "success",
        "wait_for_gpu": "success",
        "train": "success",
        "downgrade": "success",
        "window_closed": "success",
        "publish": "success",
    }
    runtime = hub.runtime(SPACE)
    assert (runtime["hardware"]["current"], runtime["hardware"]["requested"]) == (FREE, FREE)

    # The waits went through the triggerer: each task deferred (Airflow's task runner says so), the
    # triggerer ran our trigger and wrote its log beside the task's, and the task came back.
    for task in ("wait_for_gpu", "downgrade"):
        task_log = stack.task_log(DAG_ID, run_id, task)
        assert DEFERRING in task_log
        assert "Pausing task as DEFERRED" in task_log
        assert f"Space {SPACE}: wait ended (success, reached)" in task_log
        assert hub.write_token not in task_log
    trigger_log = triggerer_log(stack, run_id, "wait_for_gpu")
    assert f"trigger {DAG_ID}/{run_id}/wait_for_gpu/-1/1" in trigger_log
    assert "airflow_provider_spaces.triggers.spaces.SpaceStageTrigger" in trigger_log
    assert f"Watching Space {SPACE} until it is RUNNING on {GPU}" in trigger_log
    assert hub.write_token not in trigger_log + stack.output("triggerer")
