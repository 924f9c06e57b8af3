"""SpaceStageSensor deferred: one read before deferring, the wait in the trigger, and the task coming
back with poke mode's result or failure, soft_fail included.

The DAG runs use ``dag.test()``, which runs the trigger inline in the test's process. A task's
first start there takes seconds, which the emulator's fast clock would turn into minutes of
build: the clock stands still until the task's first read, then runs 60 times faster.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_spaces._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor
from airflow_provider_spaces.triggers.spaces import DeferredWaitError

SPACE = "demo/app"
GPU = "a10g-large"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
DEFERRING = "deferring the wait to the triggerer"


def deferred_dag(dag_id: str, **options: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        SpaceStageSensor(
            task_id="wait",
            space_id=SPACE,
            poke_interval=0.05,
            deferrable=True,
            **{"hardware": GPU, **options},
        )
    return dag


def runtime_reads(hub: Any) -> int:
    return sum(1 for entry in hub.request_log(SPACE) if entry["path"].endswith("/runtime"))


@contextmanager
def clock_starts_at_the_first_read(hub: Any) -> Iterator[None]:
    """Hold the emulator's clock until the task reads the Space, then let it run at 60x."""
    hub.set_speed(0.001)
    stop = threading.Event()

    def start_on_first_read() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            if runtime_reads(hub):
                hub.set_speed(60)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=start_on_first_read, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(5)


def test_a_deferred_sensor_waits_in_the_trigger_and_returns_the_runtime(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING", build_seconds=60)

    with clock_starts_at_the_first_read(emulated_hub):
        result = run_dag(deferred_dag("deferred_sensor"))

    wait = result.tasks["wait"]
    assert (result.state, wait.state) == ("success", "success")
    assert (wait.xcom["return_value"]["stage"], wait.xcom["return_value"]["hardware"]) == ("RUNNING", GPU)
    assert DEFERRING in wait.log
    assert "Watching Space demo/app until it is RUNNING on a10g-large" in wait.log  # the trigger
    assert "Space demo/app: wait ended (success, reached)" in wait.log
    assert runtime_reads(emulated_hub) >= 2


def test_a_sensor_whose_space_is_already_there_does_not_defer(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU)

    result = run_dag(deferred_dag("deferred_sensor_there"))

    wait = result.tasks["wait"]
    assert wait.state == "success"
    assert wait.xcom["return_value"]["hardware"] == GPU
    assert DEFERRING not in wait.log
    assert runtime_reads(emulated_hub) == 1


def test_a_sensor_whose_space_already_failed_fails_at_once_without_deferring(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILD_ERROR", error_message="CUDA out of memory")

    result = run_dag(deferred_dag("deferred_sensor_failed"))

    wait = result.tasks["wait"]
    assert wait.state == "failed"
    assert "Space demo/app is in BUILD_ERROR: CUDA out of memory" in wait.log
    assert DEFERRING not in wait.log


def test_a_build_error_seen_by_the_trigger_fails_the_task_with_the_hubs_words(emulated_hub, run_dag):
    emulated_hub.add_fault("build_error", space_id=SPACE, message="No space left on device")
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING", build_seconds=60)

    with clock_starts_at_the_first_read(emulated_hub):
        result = run_dag(deferred_dag("deferred_sensor_build_error"))

    wait = result.tasks["wait"]
    assert wait.state == "failed"
    assert DEFERRING in wait.log
    assert "Space demo/app is in BUILD_ERROR: No space left on device" in wait.log
    assert "request id" in wait.log


@pytest.mark.parametrize(
    ("soft_fail", "state"), [(False, "failed"), (True, "skipped")], ids=["fails", "soft-fail"]
)
def test_a_deferred_sensor_times_out_at_its_timeout_as_in_poke_mode(emulated_hub, run_dag, soft_fail, state):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")
    emulated_hub.set_speed(0.001)  # the build will not end during this test

    result = run_dag(deferred_dag(f"deferred_sensor_timeout_{state}", timeout=0.5, soft_fail=soft_fail))

    wait = result.tasks["wait"]
    assert wait.state == state
    assert DEFERRING in wait.log
    assert "did not become RUNNING on a10g-large by" in wait.log


# -- the event, read back -------------------------------------------------------------------------


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "status": "success",
        "reason": "reached",
        "message": "Space demo/app is RUNNING on a10g-large",
        "space_id": SPACE,
        "runtime": {
            "space_id": SPACE,
            "stage": "RUNNING",
            "hardware": GPU,
            "url": "http://127.0.0.1:9/spaces/demo/app",
        },
        "request_id": "req-7",
    }
    return {**base, **fields}


def resume(payload: Any, **options: Any) -> Any:
    """Resume a sensor with ``payload`` the way Airflow does after the trigger fired."""
    task = SpaceStageSensor(task_id="wait", space_id=SPACE, deferrable=True, **options)
    return task.resume_execution("execute_complete", {"event": payload}, {})


def test_a_success_event_returns_the_runtime_for_xcom():
    assert resume(event())["hardware"] == GPU


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        (
            event(
                status="failed",
                reason="error_stage",
                message="Space demo/app is in BUILD_ERROR: oom (request id req-7)",
            ),
            AirflowFailException,
            r"Space demo/app is in BUILD_ERROR: oom \(request id req-7\)",
        ),
        (
            event(
                status="timeout", reason="deadline", message="Space demo/app did not become RUNNING by noon"
            ),
            AirflowSensorTimeout,
            "did not become RUNNING by noon",
        ),
        (
            event(
                status="error",
                reason="final_hub_error",
                message="Waiting for Space demo/app failed: HTTP 401",
            ),
            AirflowFailException,
            "Waiting for Space demo/app failed: HTTP 401",
        ),
        (
            event(
                status="error",
                reason="transient_hub_error",
                message="Waiting for Space demo/app failed: HTTP 503",
            ),
            DeferredWaitError,
            "Waiting for Space demo/app failed: HTTP 503",
        ),
        (
            {k: v for k, v in event().items() if k != "status"},
            AirflowException,
            r"The deferred wait came back with malformed trigger event \(missing status\)",
        ),
    ],
    ids=["failed", "timeout", "final-hub-error", "transient-hub-error", "malformed"],
)
def test_an_event_that_is_not_a_success_fails_the_task_as_poke_mode_would(payload, error, match):
    with pytest.raises(error, match=match) as raised:
        resume(payload)

    if isinstance(raised.value, DeferredWaitError):
        assert raised.value.is_transient  # left to Airflow's retries, as in poke mode


@pytest.mark.parametrize(
    "payload",
    [event(status="failed", reason="dead_end", message="PAUSED"), event(status="timeout", reason="deadline")],
    ids=["failed", "timeout"],
)
def test_soft_fail_skips_a_deferred_sensor_that_failed_or_timed_out(payload):
    with pytest.raises(AirflowSkipException):
        resume(payload, soft_fail=True)


@pytest.mark.parametrize(
    ("setting", "argument", "deferrable"),
    [(None, None, False), ("True", None, True), ("True", False, False), (None, True, True)],
    ids=["unset", "from-config", "argument-wins", "argument-alone"],
)
def test_deferrable_defaults_to_airflows_default_deferrable(monkeypatch, setting, argument, deferrable):
    if setting is None:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)

    options = {} if argument is None else {"deferrable": argument}
    assert SpaceStageSensor(task_id="wait", space_id=SPACE, **options).deferrable is deferrable
