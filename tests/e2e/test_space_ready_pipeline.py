"""The readiness-gated pipeline example DAG, run end to end with ``dag.test()`` against the emulated
Hub: the work waits for the Space, and never starts when the Space cannot become ready."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags_examples" / "space_ready_pipeline.py"
SPACE = "demo/inference"
GPU = "t4-small"
TIMEOUT = 3600
DEFERRING = "deferring the wait to the triggerer"


def load_dag(load_example: Any, **settings: str) -> Any:
    """Load the DAG file as a deployment parses it, its constants set through the environment."""
    return load_example(DAG_FILE.name, **settings).dag


SETTINGS = {
    "SPACES_READY_SPACE_ID": SPACE,
    "SPACES_READY_HARDWARE": GPU,
    "SPACES_READY_POKE_SECONDS": "0.05",
    "SPACES_READY_TIMEOUT_SECONDS": str(TIMEOUT),
}


@pytest.fixture
def pipeline(load_example):
    """Return the DAG as it ships: its wait deferred to the triggerer (inline under dag.test)."""
    return load_dag(load_example, **SETTINGS)


def runtime_reads(hub: Any, space_id: str = SPACE) -> int:
    return sum(1 for entry in hub.request_log(space_id) if entry["path"].endswith("/runtime"))


def finish_the_build_after_the_first_read(hub: Any) -> threading.Thread:
    """Hold the emulated clock until the sensor's first read, then move it past the build."""
    hub.set_speed(1e-9)

    def watch() -> None:
        deadline = time.monotonic() + 60
        while runtime_reads(hub) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.advance(120)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def states(result: Any) -> dict[str, str | None]:
    return {key: task.state for key, task in result.tasks.items()}


@pytest.mark.parametrize("deferrable", ["true", "false"], ids=["deferred", "rescheduled"])
def test_the_work_starts_once_the_space_runs_on_its_hardware(emulated_hub, load_example, run_dag, deferrable):
    pipeline = load_dag(load_example, **SETTINGS, SPACES_READY_DEFERRABLE=deferrable)
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")
    watcher = finish_the_build_after_the_first_read(emulated_hub)

    result = run_dag(pipeline)
    watcher.join()

    assert result.state == "success"
    assert states(result) == {"wait_until_ready": "success", "use_the_space": "success"}
    assert result.tasks["use_the_space"].xcom["return_value"] == {
        "space_id": SPACE,
        "hardware": GPU,
        "url": f"{emulated_hub.url}/spaces/{SPACE}",
    }
    wait = result.tasks["wait_until_ready"]
    assert f"Space {SPACE} is BUILDING, {GPU} requested" in wait.log
    assert (DEFERRING in wait.log) is (deferrable == "true")
    assert runtime_reads(emulated_hub) >= 2
    # The buttons survive the deferral: the resumed task links to the Space too.
    url = f"{emulated_hub.url}/spaces/{SPACE}"
    assert (wait.xcom["_link_SpaceLink"], wait.xcom["_link_SpaceSettingsLink"]) == (url, f"{url}/settings")


def test_a_space_that_fails_to_build_fails_the_gate_at_once_with_its_error(emulated_hub, pipeline, run_dag):
    emulated_hub.add_fault("build_error", space_id=SPACE, count=1, message="pip install failed: no torch==9")
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")

    result = run_dag(pipeline)

    assert result.state == "failed"
    assert states(result) == {"wait_until_ready": "failed", "use_the_space": "upstream_failed"}
    wait = result.tasks["wait_until_ready"]
    assert DEFERRING in wait.log
    assert f"Space {SPACE} is in BUILD_ERROR: pip install failed: no torch==9" in wait.log
    # Its timeout allowed TIMEOUT / 0.05 = 72,000 reads; it stopped at the first one showing the error.
    assert runtime_reads(emulated_hub) < 60
    assert wait.try_number == 1


def test_a_paused_space_fails_the_gate_at_the_first_read(emulated_hub, pipeline, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="PAUSED")

    result = run_dag(pipeline)

    assert states(result) == {"wait_until_ready": "failed", "use_the_space": "upstream_failed"}
    assert f"Space {SPACE} is PAUSED" in result.tasks["wait_until_ready"].log
    assert runtime_reads(emulated_hub) == 1


def test_a_space_on_another_flavor_fails_the_gate_at_the_first_read(emulated_hub, pipeline, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    result = run_dag(pipeline)

    assert states(result) == {"wait_until_ready": "failed", "use_the_space": "upstream_failed"}
    assert "cpu-basic" in result.tasks["wait_until_ready"].log
    assert runtime_reads(emulated_hub) == 1
