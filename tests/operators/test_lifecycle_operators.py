"""Pause, restart and sleep time against the emulated Hub: nothing sent when the Space is already
there, waits that end on arrival, and the Hub's refusals failing the task with its words."""

from __future__ import annotations

import pytest

from airflow_provider_spaces._compat import AirflowFailException
from airflow_provider_spaces.operators.spaces import (
    SpacePauseOperator,
    SpaceRestartOperator,
    SpaceSleepTimeOperator,
)

SPACE = "demo/app"
GPU = "a10g-large"
POLL = 0.05


def run(task):
    """Run a task's ``execute`` as a worker would, outside a DAG run."""
    return task.execute({})


def test_pause_stops_a_space_on_the_gpu_and_its_bill(emulated_hub, writes, billed_now):
    emulated_hub.add_space(SPACE, hardware=GPU)

    result = run(SpacePauseOperator(task_id="pause", space_id=SPACE))

    assert (result["stage"], result["requested_hardware"]) == ("PAUSED", GPU)
    assert writes() == [("POST", "pause")]
    assert not billed_now(SPACE)


def test_pause_sends_nothing_when_the_space_is_already_paused(emulated_hub, writes, airflow_logs):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="PAUSED")

    result = run(SpacePauseOperator(task_id="pause", space_id=SPACE))

    assert result["stage"] == "PAUSED"
    assert writes() == []
    assert "Space demo/app is already paused; nothing to send" in airflow_logs.text


def test_pause_is_sent_even_when_the_runtime_cannot_be_read(emulated_hub, writes, no_client_retries):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("server_error", space_id=SPACE, method="GET", count=1)

    result = run(SpacePauseOperator(task_id="pause", space_id=SPACE))

    assert result["stage"] == "PAUSED"
    assert writes() == [("POST", "pause")]


def test_restart_brings_a_paused_space_back_on_its_hardware(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="PAUSED")

    result = run(SpaceRestartOperator(task_id="restart", space_id=SPACE, poll_interval=POLL))

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == [("POST", "restart")]


def test_restart_of_a_running_space_waits_until_it_runs_again(emulated_hub, writes, airflow_logs):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    result = run(
        SpaceRestartOperator(task_id="restart", space_id=SPACE, factory_reboot=True, poll_interval=POLL)
    )

    assert result["stage"] == "RUNNING"
    assert writes() == [("POST", "restart")]
    assert emulated_hub.request_log()[1]["query"] == {"factory": "true"}
    assert "Space demo/app is BUILDING on cpu-basic" in airflow_logs.text


def test_restart_does_not_restart_a_space_that_is_already_starting(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage="BUILDING")

    result = run(SpaceRestartOperator(task_id="restart", space_id=SPACE, poll_interval=POLL))

    assert result["stage"] == "RUNNING"
    assert writes() == []


def test_restart_fails_at_once_when_the_app_crashes_again(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage="RUNTIME_ERROR", error_message="first crash")
    emulated_hub.add_fault("runtime_error", space_id=SPACE, message="ImportError: no module named app")

    with pytest.raises(AirflowFailException, match="is in RUNTIME_ERROR: ImportError: no module named app"):
        run(SpaceRestartOperator(task_id="restart", space_id=SPACE, poll_interval=POLL, timeout=3600))


def test_sleep_time_is_set_when_it_differs(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=600)

    result = run(SpaceSleepTimeOperator(task_id="sleep", space_id=SPACE, sleep_time=3600))

    assert result["sleep_time"] == 3600
    assert writes() == [("POST", "sleeptime")]
    assert emulated_hub.request_log()[1]["body"] == {"seconds": 3600}


@pytest.mark.parametrize(
    ("current", "wanted"), [(3600, 3600), (None, -1)], ids=["same-seconds", "never-sleep-shown-as-none"]
)
def test_sleep_time_sends_nothing_when_the_space_has_it_already(emulated_hub, writes, current, wanted):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=current)

    run(SpaceSleepTimeOperator(task_id="sleep", space_id=SPACE, sleep_time=wanted))

    assert writes() == []


def test_sleep_time_on_free_hardware_fails_with_the_hubs_words(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    with pytest.raises(
        AirflowFailException,
        match=r"HTTP 400 Bad Request \(BadRequest\): Sleep time can only be set on upgraded hardware",
    ):
        run(SpaceSleepTimeOperator(task_id="sleep", space_id=SPACE, sleep_time=3600))
