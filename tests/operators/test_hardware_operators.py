"""The upgrade and downgrade operators against the emulated Hub: read before write, arrival on the
flavor, failing fast with the Hub's words, and a downgrade that stops the money in every path."""

from __future__ import annotations

import pytest

from airflow_provider_spaces._compat import AirflowException, AirflowFailException
from airflow_provider_spaces.hub.errors import ServerError, SpaceWaitTimeout
from airflow_provider_spaces.operators.spaces import (
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
)

SPACE = "demo/app"
GPU = "a10g-large"
# Often enough for the emulator's clock at 60x, where a 30 s build lasts half a real second.
POLL = 0.05


def run(task):
    """Run a task's ``execute`` as a worker would, outside a DAG run."""
    return task.execute({})


def upgrade(**options) -> SpaceHardwareUpgradeOperator:
    return SpaceHardwareUpgradeOperator(
        task_id="upgrade", space_id=SPACE, hardware=GPU, poll_interval=POLL, **options
    )


def downgrade(**options) -> SpaceHardwareDowngradeOperator:
    return SpaceHardwareDowngradeOperator(task_id="downgrade", space_id=SPACE, poll_interval=POLL, **options)


# -- upgrade ---------------------------------------------------------------------------------------


def test_upgrade_returns_the_runtime_once_the_space_runs_on_the_gpu(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    result = run(upgrade(sleep_time=3600))

    assert result == {
        "space_id": SPACE,
        "stage": "RUNNING",
        "hardware": GPU,
        "requested_hardware": GPU,
        "sleep_time": 3600,
        "storage": None,
        "url": f"{emulated_hub.url}/spaces/{SPACE}",
    }
    assert writes() == [("POST", "hardware")]
    assert emulated_hub.request_log()[1]["body"] == {"flavor": GPU, "sleepTimeSeconds": 3600}


def test_upgrade_sends_nothing_when_the_space_already_runs_on_the_gpu(emulated_hub, airflow_logs, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=3600)

    result = run(upgrade(sleep_time=3600))

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == []
    assert "Space demo/app already runs on a10g-large; no hardware request sent" in airflow_logs.text


def test_upgrade_asks_again_for_the_gpu_a_space_is_about_to_leave(emulated_hub, writes):
    # An earlier run's teardown asked for cpu-basic; the Hub has not moved the Space yet.
    emulated_hub.add_space(SPACE, hardware=GPU, schedule_seconds=3600)
    run(downgrade(wait_for_running=False))

    result = run(upgrade())

    assert (result["stage"], result["hardware"], result["requested_hardware"]) == ("RUNNING", GPU, GPU)
    assert writes() == [("POST", "hardware"), ("POST", "hardware")]


def test_upgrade_of_a_space_already_on_the_gpu_sends_only_a_different_sleep_time(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=600)

    result = run(upgrade(sleep_time=3600))

    assert writes() == [("POST", "sleeptime")]
    assert result["sleep_time"] == 3600


def test_upgrade_retried_mid_build_waits_without_requesting_again(emulated_hub, airflow_logs, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")

    result = run(upgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == []
    assert (
        "a10g-large is already requested (it is BUILDING, a10g-large requested); not requesting it again"
        in (airflow_logs.text)
    )


def test_upgrade_of_a_paused_space_requests_the_gpu_and_restarts_it(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage="PAUSED")

    result = run(upgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == [("POST", "hardware"), ("POST", "restart")]


def test_upgrade_of_a_sleeping_space_with_the_gpu_requested_wakes_it(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="SLEEPING")

    result = run(upgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == [("POST", "restart")]


def test_upgrade_of_a_space_asleep_on_cpu_basic_brings_it_up_on_the_gpu(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage="SLEEPING")

    result = run(upgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == [("POST", "hardware")]


def test_upgrade_of_a_space_that_crashed_on_the_gpu_restarts_it(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="RUNTIME_ERROR", error_message="out of memory")

    result = run(upgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", GPU)
    assert writes() == [("POST", "restart")]


def test_upgrade_without_waiting_returns_as_soon_as_the_gpu_is_requested(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    result = run(upgrade(wait_for_running=False))

    assert (result["hardware"], result["requested_hardware"]) == ("cpu-basic", GPU)


def test_upgrade_fails_at_once_on_a_gpu_build_error_with_the_hubs_words(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("build_error", space_id=SPACE, message="CUDA 13 image not found")

    with pytest.raises(
        AirflowFailException, match=r"Space demo/app is in BUILD_ERROR: CUDA 13 image not found \(see http"
    ) as caught:
        run(upgrade(timeout=3600))

    assert "request id " in str(caught.value)
    reads = [entry for entry in emulated_hub.request_log() if entry["path"].endswith("/runtime")]
    assert len(reads) < 40  # an hour's timeout at 0.05 s would allow 72,000


def test_upgrade_refused_for_lack_of_a_payment_method_fails_without_retries(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.set_payment_method("demo", False)

    with pytest.raises(
        AirflowFailException, match=r"HTTP 403 Forbidden \(PaymentRequired\): 'demo' has no payment"
    ):
        run(upgrade())


def test_upgrade_that_does_not_arrive_in_time_times_out_naming_the_last_stage(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("stuck", space_id=SPACE, stage="BUILDING")

    with pytest.raises(
        SpaceWaitTimeout, match=r"Space demo/app waited for RUNNING on a10g-large .* last stage: BUILDING"
    ):
        run(upgrade(timeout=0.3))


def test_an_upgrade_that_times_out_says_the_gpu_is_still_requested_and_billed(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("stuck", space_id=SPACE, stage="APP_STARTING")

    with pytest.raises(SpaceWaitTimeout) as caught:
        run(upgrade(timeout=0.3))

    assert "a10g-large stays requested and is billed at $1.50/h once the Space starts on it" in str(
        caught.value
    )
    assert "only a downgrade or a pause stops that" in str(caught.value)


def test_a_transient_hub_error_is_left_to_airflows_retries(emulated_hub, no_client_retries):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("server_error", space_id=SPACE, status=503)

    with pytest.raises(ServerError, match="HTTP 503"):
        run(upgrade())


# -- downgrade -------------------------------------------------------------------------------------


def test_downgrade_waits_until_the_space_runs_on_cpu_basic_and_billing_stops(
    emulated_hub, writes, billed_now
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    assert billed_now(SPACE)

    result = run(downgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", "cpu-basic")
    assert writes() == [("POST", "hardware")]
    assert not billed_now(SPACE)


@pytest.mark.parametrize(
    "stage", ["RUNNING", "PAUSED", "SLEEPING"], ids=["running-on-cpu", "paused", "sleeping"]
)
def test_downgrade_sends_nothing_when_cpu_basic_is_already_there(emulated_hub, stage, writes):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage=stage)

    result = run(downgrade())

    assert result["requested_hardware"] == "cpu-basic"
    assert writes() == []


def test_downgrade_falls_back_to_pausing_when_the_hub_refuses_it_for_a_quota(
    emulated_hub, airflow_logs, writes, billed_now
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault(
        "refuse", space_id=SPACE, action="hardware", flavor="cpu-basic", status=403, code="QuotaExceeded"
    )

    result = run(downgrade())

    assert result["stage"] == "PAUSED"
    assert writes() == [("POST", "hardware"), ("POST", "pause")]
    assert not billed_now(SPACE)
    assert "Space demo/app: pausing it instead, so that it stops costing money" in airflow_logs.text


def test_downgrade_that_does_not_arrive_succeeds_once_the_space_costs_nothing(
    emulated_hub, airflow_logs, writes
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("stuck", space_id=SPACE, stage="BUILDING")

    result = run(downgrade(timeout=0.5))

    assert result["stage"] == "BUILDING"
    assert writes() == [("POST", "hardware")]
    assert "which costs nothing; leaving it so" in airflow_logs.text


def test_downgrade_of_a_space_whose_gpu_build_failed_moves_it_to_cpu_basic(emulated_hub):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILD_ERROR", error_message="CUDA 13 image not found")

    result = run(downgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", "cpu-basic")


def test_downgrade_is_sent_even_when_the_runtime_cannot_be_read(emulated_hub, no_client_retries):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("server_error", space_id=SPACE, method="GET", count=1)

    result = run(downgrade())

    assert result["hardware"] == "cpu-basic"


def test_downgrade_fails_loudly_when_neither_downgrade_nor_pause_goes_through(emulated_hub, billed_now):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", status=403)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="pause", status=403)

    with pytest.raises(
        AirflowException,
        match=r"Space demo/app may still cost money \(RUNNING on a10g-large\): moving it to cpu-basic failed",
    ) as caught:
        run(downgrade())

    # Not a final failure: Airflow's retries may try again while money may be running.
    assert not isinstance(caught.value, AirflowFailException)
    assert "pausing it failed too" in str(caught.value)
    assert billed_now(SPACE)


def test_downgrade_without_the_pause_fallback_fails_loudly_when_refused(emulated_hub, writes):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", status=403)

    with pytest.raises(AirflowException, match="may still cost money"):
        run(downgrade(fallback_to_pause=False))

    assert writes() == [("POST", "hardware")]


# -- a downgrade that keeps trying -----------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429], ids=["server-errors", "rate-limited"])
def test_downgrade_keeps_trying_through_a_burst_of_passing_errors_and_arrives(
    emulated_hub, no_client_retries, airflow_logs, writes, billed_now, status
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault(
        "refuse", space_id=SPACE, action="hardware", flavor="cpu-basic", status=status, count=4
    )

    result = run(downgrade())

    assert (result["stage"], result["hardware"]) == ("RUNNING", "cpu-basic")
    assert writes() == [("POST", "hardware")] * 5
    assert not billed_now(SPACE)
    assert "moving it to cpu-basic failed for a passing reason (round 4;" in airflow_logs.text


def test_downgrade_gives_up_on_passing_errors_after_retry_for_and_pauses(
    emulated_hub, no_client_retries, writes, billed_now
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", flavor="cpu-basic", status=503)

    result = run(downgrade(retry_for=0.3))

    assert result["stage"] == "PAUSED"
    downgrades = [write for write in writes() if write == ("POST", "hardware")]
    assert 2 <= len(downgrades) < 10  # rounds of 0.05, 0.1, 0.2 s fit in 0.3 s
    assert writes()[-1] == ("POST", "pause")
    assert not billed_now(SPACE)


def test_a_downgrade_that_fails_loudly_names_the_price_and_what_to_do_by_hand(
    emulated_hub, no_client_retries
):
    emulated_hub.add_space(SPACE, hardware=GPU)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", status=403, code="QuotaExceeded")
    emulated_hub.add_fault("refuse", space_id=SPACE, action="pause", status=503)

    with pytest.raises(AirflowException) as caught:
        run(downgrade(retry_for=0.2))

    message = str(caught.value)
    assert "a10g-large costs $1.50 per hour (the built-in table)" in message
    assert f"on its settings page ({emulated_hub.url}/spaces/{SPACE}/settings)" in message
    assert f"POST /api/spaces/{SPACE}/pause" in message
