"""The GPU training window example DAG, run end to end with ``dag.test()`` against the emulated Hub.

The DAG file is loaded as users deploy it, its constants set through the environment: the Space,
a GPU, the default connection (which points at the emulator), a few seconds of work and a short
poll interval. The emulator's clock runs at 60x, so a GPU build of 30 emulated seconds lasts half
a real one; timeouts stay long, so that a run ending early proves it failed fast.
"""

from __future__ import annotations

import importlib.util
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags_examples" / "gpu_training_window.py"
SPACE = "demo/gpu-trainer"
GPU = "a10g-large"
FAILSAFE_SLEEP = 3600
POLL = 0.05
GPU_TIMEOUT = 3600


@pytest.fixture
def window_dag(emulated_hub, monkeypatch):
    """Return a function loading the example DAG, with the given seconds of placeholder work."""

    def load(work_seconds: float = 0.5) -> Any:
        settings = {
            "SPACES_WINDOW_SPACE_ID": SPACE,
            "SPACES_WINDOW_GPU": GPU,
            "SPACES_WINDOW_CONN_ID": "huggingface_default",
            "SPACES_WINDOW_WORK_SECONDS": str(work_seconds),
            "SPACES_WINDOW_POLL_SECONDS": str(POLL),
            "SPACES_WINDOW_GPU_TIMEOUT_SECONDS": str(GPU_TIMEOUT),
            "SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS": "60",
            "SPACES_WINDOW_FAILSAFE_SLEEP_SECONDS": str(FAILSAFE_SLEEP),
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location(f"gpu_training_window_{uuid.uuid4().hex}", DAG_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag

    return load


def states(result) -> dict[str, str | None]:
    return {task_id: task.state for task_id, task in result.tasks.items()}


def hardware_requests(hub) -> list[str]:
    """Return the flavors asked for, in order."""
    return [
        entry["body"]["flavor"]
        for entry in hub.request_log(SPACE)
        if entry["method"] == "POST" and entry["path"].endswith("/hardware")
    ]


def assert_back_on_cpu_basic_and_not_billed(hub) -> None:
    runtime = hub.runtime(SPACE)
    assert (runtime["stage"], runtime["hardware"]) == (
        "RUNNING",
        {"current": "cpu-basic", "requested": "cpu-basic"},
    )
    assert not hub.ledger(SPACE)["intervals"][-1]["billed"]


def test_the_window_runs_on_the_gpu_and_ends_back_on_cpu_basic(emulated_hub, window_dag, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    result = run_dag(window_dag())

    assert result.state == "success"
    assert states(result) == dict.fromkeys(
        ["upgrade", "wait_for_gpu", "train", "downgrade", "publish"], "success"
    )
    assert hardware_requests(emulated_hub) == [GPU, "cpu-basic"]
    assert result.tasks["wait_for_gpu"].xcom["return_value"]["hardware"] == GPU
    assert result.tasks["train"].xcom["return_value"]["work_seconds"] >= 0.5
    assert emulated_hub.ledger(SPACE)["billed_minutes"][GPU] > 0
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)
    log = result.tasks["wait_for_gpu"].log
    assert "Space demo/gpu-trainer is RUNNING on a10g-large (" in log


def test_a_failing_work_task_still_puts_the_space_back_and_stops_the_bill(emulated_hub, window_dag, run_dag):
    # The GPU build lasts five real seconds, so that the sensor is polling when the Space comes up
    # (a task takes up to three seconds to start on Airflow 3.1); the app then crashes five real
    # seconds after it started on the GPU, well inside the ten seconds of work: the sensor has
    # seen the GPU long before, and the check at the end of the work sees the crash, even on a
    # loaded machine.
    emulated_hub.add_space(SPACE, hardware="cpu-basic", build_seconds=300)
    emulated_hub.add_fault("runtime_error", space_id=SPACE, after_seconds=300, message="CUDA out of memory")

    result = run_dag(window_dag(work_seconds=10))

    assert result.state == "failed"
    assert states(result) == {
        "upgrade": "success",
        "wait_for_gpu": "success",
        "train": "failed",
        "downgrade": "success",
        "publish": "upstream_failed",
    }
    assert re.search(
        r"Space demo/gpu-trainer is not running on a10g-large (before|after) the work: it is RUNTIME_ERROR",
        result.tasks["train"].log,
    )
    assert hardware_requests(emulated_hub) == [GPU, "cpu-basic"]
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_a_failing_gpu_build_fails_the_run_at_once_and_the_teardown_runs(emulated_hub, window_dag, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("build_error", space_id=SPACE, count=1, message="No matching CUDA image")

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result) == {
        "upgrade": "success",
        "wait_for_gpu": "failed",
        "train": "upstream_failed",
        "downgrade": "success",
        "publish": "upstream_failed",
    }
    assert (
        "Space demo/gpu-trainer is in BUILD_ERROR: No matching CUDA image" in result.tasks["wait_for_gpu"].log
    )
    # The sensor stopped at the first read showing the error: its timeout would have allowed
    # GPU_TIMEOUT / POLL = 72,000 reads.
    log = emulated_hub.request_log(SPACE)
    downgrade_at = next(i for i, entry in enumerate(log) if entry["method"] == "POST" and i > 1)
    reads_before_teardown = [entry for entry in log[:downgrade_at] if entry["path"].endswith("/runtime")]
    assert len(reads_before_teardown) < 60
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_a_space_already_on_the_gpu_gets_no_hardware_request_before_the_work(
    emulated_hub, window_dag, run_dag
):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=FAILSAFE_SLEEP)

    result = run_dag(window_dag())

    assert result.state == "success"
    assert hardware_requests(emulated_hub) == ["cpu-basic"]  # only the teardown's
    writes_before_teardown = [entry for entry in emulated_hub.request_log(SPACE) if entry["method"] != "GET"][
        :-1
    ]
    assert writes_before_teardown == []
    assert "Space demo/gpu-trainer already runs on a10g-large; no hardware request sent" in (
        result.tasks["upgrade"].log
    )
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_a_teardown_that_cannot_stop_the_bill_fails_the_run(emulated_hub, window_dag, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", flavor="cpu-basic", status=403)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="pause", status=403)

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result) == {
        "upgrade": "success",
        "wait_for_gpu": "success",
        "train": "success",
        "downgrade": "failed",
        "publish": "upstream_failed",
    }
    assert result.tasks["downgrade"].try_number == 3  # the teardown's two retries were used
    assert (
        "Space demo/gpu-trainer may still cost money (RUNNING on a10g-large)" in result.tasks["downgrade"].log
    )
