"""The waiting rule as a table: from one runtime, reached, keep waiting, or fail at once; and the
billing predicates and progress lines that the waits share."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spaces.hub.errors import SpaceStageError
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage
from airflow_provider_spaces.hub.waiting import (
    CheckReason,
    CheckStatus,
    StageTracker,
    billing_stopped,
    check_stage,
    describe_state,
    format_duration,
    is_billing,
    will_bill,
)

ENDPOINT = "http://127.0.0.1:9"
RUNNING = frozenset({SpaceStage.RUNNING})


def runtime(
    stage: str, current: str | None = "cpu-basic", requested: str | None = None, **extra: Any
) -> SpaceRuntime:
    payload = {"stage": stage, "hardware": {"current": current, "requested": requested or current}, **extra}
    return SpaceRuntime.from_payload("demo/app", payload, endpoint=ENDPOINT, request_id="rid-7")


GPU = "a10g-large"

CASES = [
    # (runtime, targets, hardware, status, reason)
    (runtime("RUNNING"), RUNNING, None, "reached", "reached"),
    (runtime("RUNNING", GPU), RUNNING, GPU, "reached", "reached"),
    (runtime("RUNNING", GPU, "cpu-basic"), RUNNING, GPU, "reached", "reached"),
    (runtime("RUNNING", "cpu-basic", GPU), RUNNING, GPU, "waiting", "hardware_pending"),
    (runtime("RUNNING_BUILDING", "cpu-basic", GPU), RUNNING, GPU, "waiting", "in_motion"),
    (runtime("BUILDING", "cpu-basic", GPU), RUNNING, GPU, "waiting", "in_motion"),
    (runtime("APP_STARTING", GPU), RUNNING, GPU, "waiting", "in_motion"),
    (runtime("BUILDING", None, None), RUNNING, None, "waiting", "in_motion"),
    (runtime("RUNNING", "cpu-basic", "cpu-basic"), RUNNING, GPU, "failed", "hardware_mismatch"),
    (runtime("RUNNING", None, None), RUNNING, GPU, "failed", "hardware_mismatch"),
    (runtime("BUILDING", "cpu-basic", "t4-small"), RUNNING, GPU, "failed", "hardware_mismatch"),
    (runtime("BUILD_ERROR", errorMessage="pip failed"), RUNNING, None, "failed", "error_stage"),
    (runtime("RUNTIME_ERROR"), RUNNING, GPU, "failed", "error_stage"),
    (runtime("CONFIG_ERROR"), RUNNING, None, "failed", "error_stage"),
    (runtime("NO_APP_FILE"), RUNNING, None, "failed", "error_stage"),
    (runtime("PAUSED", None, GPU), RUNNING, GPU, "failed", "dead_end"),
    (runtime("STOPPED"), RUNNING, None, "failed", "dead_end"),
    (runtime("DELETING"), RUNNING, None, "failed", "dead_end"),
    (runtime("SLEEPING"), RUNNING, None, "failed", "dead_end"),
    (runtime("PAUSED", None), frozenset({SpaceStage.PAUSED}), None, "reached", "reached"),
    (runtime("SLEEPING"), frozenset({"RUNNING", "SLEEPING"}), None, "reached", "reached"),
    (runtime("BUILD_ERROR"), frozenset({"BUILD_ERROR"}), None, "reached", "reached"),
    (runtime("RUNNING"), frozenset({SpaceStage.PAUSED}), None, "waiting", "not_yet"),
    (runtime("WARMING_UP"), RUNNING, None, "waiting", "unknown_stage"),
    (runtime("WARMING_UP", "cpu-basic", GPU), RUNNING, GPU, "waiting", "unknown_stage"),
]
IDS = [
    "running",
    "running-on-the-expected-gpu",
    "on-the-gpu-while-a-downgrade-is-requested",
    "running-on-the-old-flavor",
    "rebuilding-for-the-gpu",
    "building-for-the-gpu",
    "starting-on-the-gpu",
    "first-build",
    "running-on-cpu-with-cpu-requested",
    "static-space-never-gets-hardware",
    "building-for-another-gpu",
    "build-error",
    "runtime-error",
    "config-error",
    "no-app-file",
    "paused",
    "stopped",
    "deleting",
    "sleeping",
    "waiting-for-paused",
    "sleeping-accepted",
    "error-stage-as-the-target",
    "running-while-waiting-for-pause",
    "unknown-stage",
    "unknown-stage-with-hardware-pending",
]


@pytest.mark.parametrize(("space", "targets", "hardware", "status", "reason"), CASES, ids=IDS)
def test_the_waiting_rule(
    space: SpaceRuntime, targets: frozenset[str], hardware: str | None, status: str, reason: str
) -> None:
    check = check_stage(space, target_stages=targets, hardware=hardware)

    assert (check.status, check.reason) == (CheckStatus(status), CheckReason(reason))
    assert check.runtime is space
    assert check.reached is (status == "reached")
    assert check.failed is (status == "failed")


def test_running_is_the_default_target() -> None:
    assert check_stage(runtime("RUNNING")).reached
    assert check_stage(runtime("PAUSED", None)).failed


def test_an_error_stage_fails_with_the_stage_hub_message_url_and_request_id() -> None:
    check = check_stage(runtime("BUILD_ERROR", errorMessage="No matching distribution found for torch==9"))

    with pytest.raises(
        SpaceStageError, match="Space demo/app is in BUILD_ERROR: No matching distribution"
    ) as caught:
        check.raise_if_failed()

    assert f"see {ENDPOINT}/spaces/demo/app" in check.message
    assert "request id rid-7" in check.message
    error = caught.value
    assert (error.stage, error.hub_message, error.request_id) == (
        "BUILD_ERROR",
        "No matching distribution found for torch==9",
        "rid-7",
    )
    assert error.url == f"{ENDPOINT}/spaces/demo/app"
    assert error.reason == "error_stage"
    assert error.is_final


def test_an_error_stage_without_a_message_says_so() -> None:
    assert "the Hub gave no error message" in check_stage(runtime("RUNTIME_ERROR")).message


def test_a_paused_space_fails_saying_it_will_not_run_by_itself() -> None:
    check = check_stage(runtime("PAUSED", None, GPU), hardware=GPU)

    with pytest.raises(
        SpaceStageError, match="Space demo/app is PAUSED and will not become RUNNING by itself"
    ):
        check.raise_if_failed()


def test_a_hardware_mismatch_says_which_flavor_to_request() -> None:
    check = check_stage(runtime("RUNNING", "cpu-basic", "cpu-basic"), hardware=GPU)

    assert "with cpu-basic requested, so it will not move to a10g-large by itself" in check.message
    assert "request a10g-large first" in check.message


def test_an_unknown_stage_is_not_an_error_and_the_message_says_so() -> None:
    check = check_stage(runtime("WARMING_UP"))

    assert "WARMING_UP, which this package does not know; not treating it as an error" in check.message
    check.raise_if_failed()  # waiting never raises


def test_waiting_for_hardware_names_what_runs_now() -> None:
    check = check_stage(runtime("RUNNING", "cpu-basic", GPU), hardware=GPU)

    assert (
        check.message == "Space demo/app is RUNNING on cpu-basic; a10g-large is requested and not there yet"
    )


BILLING_CASES = [
    # (runtime, billing now, will bill by itself)
    (runtime("RUNNING", GPU), True, True),
    (runtime("APP_STARTING", GPU), True, True),
    (runtime("RUNNING_BUILDING", GPU, "cpu-basic"), True, False),
    (runtime("RUNNING", GPU, "cpu-basic"), True, False),
    (runtime("BUILDING", GPU, "cpu-basic"), False, False),
    (runtime("BUILDING", "cpu-basic", GPU), False, True),
    (runtime("RUNNING", "cpu-basic", GPU), False, True),
    (runtime("RUNNING", "cpu-basic"), False, False),
    (runtime("PAUSED", None, GPU), False, False),
    (runtime("SLEEPING", None, GPU), False, False),
    (runtime("BUILD_ERROR", None, GPU), False, False),
    (runtime("RUNTIME_ERROR", GPU), False, False),
    (runtime("RUNNING", None, None), False, False),
    (runtime("WARMING_UP", GPU), True, True),
    (runtime("RUNNING", "h200-mega"), True, True),
]
BILLING_IDS = [
    "running-on-the-gpu",
    "starting-on-the-gpu",
    "old-gpu-container-serving-during-a-downgrade",
    "downgrade-requested-but-not-started",
    "building-for-cpu-after-leaving-the-gpu",
    "building-for-the-gpu",
    "gpu-requested-still-on-cpu",
    "running-on-cpu",
    "paused-with-the-gpu-requested",
    "sleeping-with-the-gpu-requested",
    "gpu-build-failed",
    "crashed-on-the-gpu",
    "static-space",
    "unknown-stage-on-the-gpu-counts-as-billed",
    "unknown-flavor-counts-as-paid",
]


@pytest.mark.parametrize(("space", "now", "later"), BILLING_CASES, ids=BILLING_IDS)
def test_billing_predicates(space: SpaceRuntime, now: bool, later: bool) -> None:
    assert (is_billing(space), will_bill(space)) == (now, later)
    assert billing_stopped(space) is (not now and not later)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")],
    ids=["zero", "seconds", "rounds-up-to-a-minute", "minutes", "hours"],
)
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_tracker_reports_each_change_once_with_the_time_the_last_state_held() -> None:
    tracker = StageTracker()

    lines = [
        tracker.observe(runtime("RUNNING", "cpu-basic", GPU), 0),
        tracker.observe(runtime("RUNNING", "cpu-basic", GPU), 3),
        tracker.observe(runtime("BUILDING", "cpu-basic", GPU), 5),
        tracker.observe(runtime("BUILDING", "cpu-basic", GPU), 20),
        tracker.observe(runtime("APP_STARTING", GPU), 125),
        tracker.observe(runtime("RUNNING", GPU), 140),
    ]

    assert lines == [
        "Space demo/app is RUNNING on cpu-basic, a10g-large requested (0 s into the wait)",
        None,
        "Space demo/app is BUILDING on cpu-basic, a10g-large requested (5 s into the wait; "
        "RUNNING on cpu-basic, a10g-large requested for 5 s)",
        None,
        "Space demo/app is APP_STARTING on a10g-large (2 min 05 s into the wait; "
        "BUILDING on cpu-basic, a10g-large requested for 2 min 00 s)",
        "Space demo/app is RUNNING on a10g-large (2 min 20 s into the wait; APP_STARTING on a10g-large for 15 s)",
    ]


def test_describe_state_leaves_out_missing_hardware() -> None:
    assert describe_state(runtime("BUILDING", None, None)) == "BUILDING"
    assert describe_state(runtime("BUILDING", None, GPU)) == "BUILDING, a10g-large requested"
