"""SpacesHook.wait_for_stage: arrival on the flavor asked for, one log line per change, failing at
once on a stage that cannot lead there, and a bound that is never overslept."""

from __future__ import annotations

import pytest

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.errors import InvalidArgumentError, SpaceStageError, SpaceWaitTimeout

SPACE = "demo/app"
GPU = "a10g-large"


@pytest.fixture
def hook(airflow_connection, hub_emulator) -> SpacesHook:
    airflow_connection("emulated", host=hub_emulator.url, password=hub_emulator.write_token)
    made = SpacesHook("emulated")
    yield made
    made.close()


def runtime_reads(hub_emulator) -> int:
    return sum(1 for entry in hub_emulator.request_log(SPACE) if entry["path"].endswith("/runtime"))


def test_wait_returns_once_the_space_runs_on_the_requested_flavor(hook, hub_emulator, airflow_logs):
    hub_emulator.add_space(SPACE, hardware="cpu-basic")
    requested = hook.request_space_hardware(SPACE, GPU)

    runtime = hook.wait_for_stage(SPACE, hardware=GPU, timeout=60, poll_interval=0.05, runtime=requested)

    assert (runtime.stage, runtime.hardware) == ("RUNNING", GPU)
    progress = [line for line in airflow_logs.text.splitlines() if "into the wait" in line]
    stages = [line.split(" is ", 1)[1].split(" (")[0] for line in progress]
    assert stages == [
        "RUNNING on cpu-basic, a10g-large requested",
        "BUILDING on cpu-basic, a10g-large requested",
        "APP_STARTING on a10g-large",
        "RUNNING on a10g-large",
    ]
    assert runtime_reads(hub_emulator) > len(progress)  # polled more often than it logged


def test_wait_fails_at_the_first_read_showing_a_build_error(hook, hub_emulator):
    hub_emulator.add_space(SPACE, hardware="cpu-basic")
    hub_emulator.add_fault("build_error", space_id=SPACE, message="torch==9 not found")
    hook.request_space_hardware(SPACE, GPU)

    with pytest.raises(
        SpaceStageError, match="Space demo/app is in BUILD_ERROR: torch==9 not found"
    ) as caught:
        hook.wait_for_stage(SPACE, hardware=GPU, timeout=3600, poll_interval=0.05)

    assert caught.value.url == f"{hub_emulator.url}/spaces/{SPACE}"
    assert caught.value.request_id
    # A build takes half a real second here: an hour's timeout allows 72,000 reads, a handful were made.
    assert runtime_reads(hub_emulator) < 40


def test_wait_gives_up_at_the_timeout_naming_the_space_its_stage_and_the_wait(hook, hub_emulator):
    hub_emulator.add_space(SPACE, hardware="cpu-basic")
    hub_emulator.add_fault("stuck", space_id=SPACE, stage="BUILDING")
    hook.request_space_hardware(SPACE, GPU)

    with pytest.raises(
        SpaceWaitTimeout,
        match=r"Space demo/app waited for RUNNING on a10g-large for 0 s without arriving; last stage: BUILDING",
    ) as caught:
        hook.wait_for_stage(SPACE, hardware=GPU, timeout=0.3, poll_interval=0.05)

    assert caught.value.is_transient
    assert f"See the Space's logs at {hub_emulator.url}/spaces/{SPACE}" in str(caught.value)


class FakeClock:
    """A monotonic clock that moves only when the wait sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_never_sleeps_longer_than_the_time_left(hook, hub_emulator, monkeypatch):
    hub_emulator.add_space(SPACE, hardware="cpu-basic")
    hub_emulator.add_fault("stuck", space_id=SPACE, stage="BUILDING")
    hook.request_space_hardware(SPACE, GPU)
    fake = FakeClock()
    monkeypatch.setattr(SpacesHook, "_monotonic", staticmethod(fake.monotonic))
    monkeypatch.setattr(SpacesHook, "_sleep", staticmethod(fake.sleep))

    with pytest.raises(SpaceWaitTimeout, match="for 10 s without arriving"):
        hook.wait_for_stage(SPACE, hardware=GPU, timeout=10, poll_interval=4)

    assert fake.sleeps == [4, 4, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0, "poll_interval": 1}, "Invalid timeout: must be more than 0 seconds"),
        ({"timeout": 10, "poll_interval": -1}, "Invalid poll_interval: must be more than 0 seconds"),
        (
            {"timeout": 10, "poll_interval": 1, "target_stages": []},
            "Invalid target_stages: must name at least",
        ),
    ],
    ids=["zero-timeout", "negative-poll-interval", "no-target-stage"],
)
def test_wait_refuses_bad_bounds_before_any_request(hook, hub_emulator, options, message):
    hub_emulator.add_space(SPACE, hardware="cpu-basic")

    with pytest.raises(InvalidArgumentError, match=message):
        hook.wait_for_stage(SPACE, **options)

    assert hub_emulator.request_log() == []


def test_the_error_stage_a_space_is_leaving_does_not_end_the_wait(hook, hub_emulator):
    hub_emulator.add_space(SPACE, hardware=GPU, stage="BUILD_ERROR", error_message="CUDA 13 image not found")
    answer = hook.request_space_hardware(SPACE, "cpu-basic")
    assert answer.stage == "BUILD_ERROR"  # the Hub's answer still shows where the Space was

    runtime = hook.wait_for_stage(
        SPACE, hardware="cpu-basic", timeout=60, poll_interval=0.05, runtime=answer, leaving="BUILD_ERROR"
    )

    assert (runtime.stage, runtime.hardware) == ("RUNNING", "cpu-basic")


def test_coming_back_to_the_error_stage_it_left_fails_the_wait(hook, hub_emulator):
    hub_emulator.add_space(SPACE, hardware=GPU, stage="BUILD_ERROR", error_message="first failure")
    hub_emulator.add_fault("build_error", space_id=SPACE, message="second failure")
    answer = hook.restart_space(SPACE)

    with pytest.raises(SpaceStageError, match="is in BUILD_ERROR: second failure"):
        hook.wait_for_stage(
            SPACE, hardware=GPU, timeout=60, poll_interval=0.05, runtime=answer, leaving="BUILD_ERROR"
        )
