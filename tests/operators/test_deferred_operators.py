"""The waiting operators deferred: the check before deferring, the wait in the trigger, and what the
task makes of the event: the runtime, poke mode's failures, and a downgrade that still stops the
money when its deferred wait fails.

The DAG runs use ``dag.test()``, which runs the trigger inline in the test's process.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_spaces._compat import AirflowException, AirflowFailException
from airflow_provider_spaces.hub.errors import SpaceWaitTimeout
from airflow_provider_spaces.operators.spaces import (
    SpaceDuplicateOperator,
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
    SpaceRestartOperator,
)
from airflow_provider_spaces.operators.window import SpaceLeaseOperator, SpaceWindowDowngradeOperator
from airflow_provider_spaces.triggers.spaces import DeferredWaitError

SPACE = "demo/app"
COPY = "demo/app-staging"
GPU = "a10g-large"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
DEFERRING = "deferring the wait to the triggerer"


def one_task_dag(dag_id: str, task: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        dag.add_task(task)
    return dag


def test_a_deferred_upgrade_waits_in_the_trigger_for_the_gpu(emulated_hub, run_dag, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", build_seconds=60)
    upgrade = SpaceHardwareUpgradeOperator(
        task_id="upgrade", space_id=SPACE, hardware=GPU, poll_interval=0.05, deferrable=True
    )

    result = run_dag(one_task_dag("deferred_upgrade", upgrade))

    task = result.tasks["upgrade"]
    assert (result.state, task.state) == ("success", "success")
    assert (task.xcom["return_value"]["stage"], task.xcom["return_value"]["hardware"]) == ("RUNNING", GPU)
    assert DEFERRING in task.log
    assert "Space demo/app: wait ended (success, reached)" in task.log
    assert writes() == [("POST", "hardware")]  # resuming sends nothing again


def test_a_deferred_restart_waits_until_the_space_runs_again(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware="t4-small", stage="PAUSED", build_seconds=60)
    restart = SpaceRestartOperator(task_id="restart", space_id=SPACE, poll_interval=0.05, deferrable=True)

    result = run_dag(one_task_dag("deferred_restart", restart))

    task = result.tasks["restart"]
    assert task.state == "success"
    assert (task.xcom["return_value"]["stage"], task.xcom["return_value"]["hardware"]) == (
        "RUNNING",
        "t4-small",
    )
    assert DEFERRING in task.log


def test_a_deferred_downgrade_that_does_not_arrive_in_time_pauses_the_space(emulated_hub, run_dag, writes):
    # The Hub takes its time to move the Space: it keeps running, billed, on the GPU meanwhile.
    emulated_hub.add_space(SPACE, hardware=GPU, schedule_seconds=24 * 3600)
    downgrade = SpaceHardwareDowngradeOperator(
        task_id="downgrade", space_id=SPACE, poll_interval=0.05, timeout=0.5, deferrable=True
    )

    result = run_dag(one_task_dag("deferred_downgrade", downgrade))

    task = result.tasks["downgrade"]
    assert task.state == "success"
    assert DEFERRING in task.log
    assert "pausing it instead, so that it stops costing money" in task.log
    assert writes() == [("POST", "hardware"), ("POST", "pause")]
    assert emulated_hub.runtime(SPACE)["stage"] == "PAUSED"


def test_an_operator_whose_space_is_already_there_does_not_defer(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_space(COPY, hardware="cpu-basic")
    duplicate = SpaceDuplicateOperator(
        task_id="duplicate", space_id=SPACE, target_space_id=COPY, poll_interval=0.05, deferrable=True
    )

    result = run_dag(one_task_dag("deferred_duplicate_there", duplicate))

    task = result.tasks["duplicate"]
    assert task.state == "success"
    assert task.xcom["return_value"]["stage"] == "RUNNING"
    assert DEFERRING not in task.log


def test_an_operator_whose_space_already_failed_fails_at_once_without_deferring(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_space(COPY, hardware="cpu-basic", stage="RUNTIME_ERROR", error_message="Exit code: 137")
    duplicate = SpaceDuplicateOperator(
        task_id="duplicate", space_id=SPACE, target_space_id=COPY, poll_interval=0.05, deferrable=True
    )

    with pytest.raises(
        AirflowFailException, match="Space demo/app-staging is in RUNTIME_ERROR: Exit code: 137"
    ):
        duplicate.execute({})


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


def resume(payload: Any) -> Any:
    """Resume an upgrade with ``payload`` the way Airflow does after the trigger fired."""
    task = SpaceHardwareUpgradeOperator(
        task_id="upgrade", space_id=SPACE, hardware=GPU, timeout=1800, deferrable=True
    )
    return task.resume_execution("execute_complete", {"event": payload, "hardware": GPU}, {})


def test_a_success_event_returns_the_runtime_for_xcom(emulated_hub):
    assert resume(event()) == event()["runtime"]


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
                status="timeout",
                reason="deadline",
                runtime={"stage": "BUILDING", "url": "http://x/spaces/demo/app"},
            ),
            SpaceWaitTimeout,
            r"Space demo/app waited for RUNNING on a10g-large for 1800 s without arriving; last stage: BUILDING",
        ),
        (
            event(
                status="error",
                reason="final_hub_error",
                message="Waiting for Space demo/app failed: HTTP 403",
            ),
            AirflowFailException,
            "Waiting for Space demo/app failed: HTTP 403",
        ),
        (
            event(
                status="error", reason="unexpected_error", message="Waiting for Space demo/app failed: boom"
            ),
            DeferredWaitError,
            "Waiting for Space demo/app failed: boom",
        ),
        (
            {**event(), "extra": 1},
            AirflowException,
            r"The deferred wait came back with malformed trigger event \(unknown extra\)",
        ),
    ],
    ids=["failed", "timeout", "final-hub-error", "unexpected-error", "malformed"],
)
def test_an_event_that_is_not_a_success_fails_the_task_as_poke_mode_would(
    emulated_hub, payload, error, match
):
    with pytest.raises(error, match=match):
        resume(payload)


def test_deferrable_defaults_to_airflows_default_deferrable(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")

    assert SpaceRestartOperator(task_id="restart", space_id=SPACE).deferrable is True
    assert SpaceRestartOperator(task_id="restart", space_id=SPACE, deferrable=False).deferrable is False


def test_a_deferred_window_downgrade_releases_its_lease_and_reports_the_cost(
    emulated_hub, run_dag, stored_leases
):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", build_seconds=60)
    with DAG("deferred_window_downgrade", schedule=None, start_date=START) as dag:
        take = SpaceLeaseOperator(task_id="take", space_id=SPACE, hardware=GPU, max_duration=3600)
        upgrade = SpaceHardwareUpgradeOperator(
            task_id="upgrade", space_id=SPACE, hardware=GPU, poll_interval=0.05
        )
        downgrade = SpaceWindowDowngradeOperator(
            task_id="downgrade", space_id=SPACE, poll_interval=0.05, deferrable=True
        )
        take >> upgrade >> downgrade

    result = run_dag(dag)

    task = result.tasks["downgrade"]
    assert (result.state, task.state) == ("success", "success")
    assert DEFERRING in task.log
    assert task.xcom["return_value"]["lease_released"] is True
    assert task.xcom["return_value"]["cost"]["hardware"] == GPU
    assert "window cost: " in task.log
    assert stored_leases.all() == {}
