"""The Space state machine as a client sees it: raw HTTP reads while the clock is moved by hand."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator

SPACE = "demo/app"
TIMINGS = {"build_seconds": 20, "start_seconds": 5, "schedule_seconds": 5}


def seen(runtime: dict[str, Any]) -> tuple[str, str | None, str | None]:
    return runtime["stage"], runtime["hardware"]["current"], runtime["hardware"]["requested"]


def test_a_new_space_builds_then_starts_then_runs(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, stage="BUILDING", **TIMINGS)

    first = api.runtime(SPACE)
    assert seen(first) == ("BUILDING", None, "cpu-basic")
    assert first["gcTimeout"] == 172800
    still_hub.advance(19.9)
    assert seen(api.runtime(SPACE)) == ("BUILDING", None, "cpu-basic")
    still_hub.advance(0.2)
    assert seen(api.runtime(SPACE)) == ("APP_STARTING", "cpu-basic", "cpu-basic")
    still_hub.advance(5)
    assert seen(api.runtime(SPACE)) == ("RUNNING", "cpu-basic", "cpu-basic")


def test_hardware_request_keeps_the_old_flavor_running_until_the_rebuild_ends(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE, **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "a10g-large"})
    assert answer.status_code == 200
    assert seen(answer.json()) == ("RUNNING", "cpu-basic", "a10g-large")
    still_hub.advance(4.9)
    # RUNNING is not arrival: the Space still runs on the old flavor while the Hub schedules.
    assert seen(api.runtime(SPACE)) == ("RUNNING", "cpu-basic", "a10g-large")
    still_hub.advance(0.2)
    assert seen(api.runtime(SPACE)) == ("BUILDING", "cpu-basic", "a10g-large")
    still_hub.advance(20)
    assert seen(api.runtime(SPACE)) == ("APP_STARTING", "a10g-large", "a10g-large")
    still_hub.advance(5)
    assert seen(api.runtime(SPACE)) == ("RUNNING", "a10g-large", "a10g-large")


def test_requesting_the_flavor_the_space_is_on_changes_nothing(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "t4-small"})
    still_hub.advance(6)

    assert seen(answer.json()) == ("RUNNING", "t4-small", "t4-small")
    assert seen(api.runtime(SPACE)) == ("RUNNING", "t4-small", "t4-small")
    assert [i["stage"] for i in still_hub.ledger(SPACE)["intervals"]] == ["RUNNING"]


def test_pause_is_immediate_and_keeps_the_requested_flavor(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="a10g-small", stage="BUILDING", **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/pause")
    still_hub.advance(1000)

    assert seen(answer.json()) == ("PAUSED", None, "a10g-small")
    assert seen(api.runtime(SPACE)) == ("PAUSED", None, "a10g-small")


def test_hardware_request_on_a_paused_space_only_changes_the_requested_flavor(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE, stage="PAUSED", **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "t4-medium"})
    still_hub.advance(1000)

    assert seen(answer.json()) == ("PAUSED", None, "t4-medium")
    assert seen(api.runtime(SPACE)) == ("PAUSED", None, "t4-medium")


def test_restart_from_pause_builds_again_onto_the_requested_flavor(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", stage="PAUSED", **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/restart")
    assert seen(answer.json()) == ("BUILDING", None, "t4-small")
    still_hub.advance(20.1)
    assert seen(api.runtime(SPACE)) == ("APP_STARTING", "t4-small", "t4-small")
    still_hub.advance(5)
    assert seen(api.runtime(SPACE)) == ("RUNNING", "t4-small", "t4-small")


def test_restart_of_a_running_space_restarts_only_the_app(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/restart")
    assert seen(answer.json()) == ("APP_STARTING", "t4-small", "t4-small")
    still_hub.advance(5.1)
    assert seen(api.runtime(SPACE)) == ("RUNNING", "t4-small", "t4-small")
    assert "BUILDING" not in [i["stage"] for i in still_hub.ledger(SPACE)["intervals"]]


@pytest.mark.parametrize(
    ("factory_build_seconds", "build_ends_after"),
    [(50, 50), (None, 60)],
    ids=["configured-factory-build", "default-three-times-the-build"],
)
def test_factory_reboot_rebuilds_without_cache_for_longer(
    still_hub: HubEmulator, api: Any, factory_build_seconds: float | None, build_ends_after: float
) -> None:
    still_hub.add_space(SPACE, factory_build_seconds=factory_build_seconds, **TIMINGS)

    answer = api.post(f"/api/spaces/{SPACE}/restart", params={"factory": "true"})
    assert answer.json()["stage"] == "BUILDING"
    still_hub.advance(build_ends_after - 0.5)
    assert api.runtime(SPACE)["stage"] == "BUILDING"
    still_hub.advance(1)
    assert api.runtime(SPACE)["stage"] == "APP_STARTING"


def test_an_idle_space_on_paid_hardware_sleeps_after_its_sleep_time(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="a10g-small", sleep_time=600, **TIMINGS)

    still_hub.advance(599)
    assert api.runtime(SPACE)["stage"] == "RUNNING"
    still_hub.advance(2)
    runtime = api.runtime(SPACE)

    assert seen(runtime) == ("SLEEPING", None, "a10g-small")
    assert runtime["gcTimeout"] == 600


def test_activity_postpones_sleep_and_reads_do_not(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="a10g-small", sleep_time=600, **TIMINGS)

    still_hub.advance(500)
    api.post(f"/api/spaces/{SPACE}/sleeptime", json={"seconds": 600})
    still_hub.advance(500)
    assert api.runtime(SPACE)["stage"] == "RUNNING"
    still_hub.visit(SPACE)
    still_hub.advance(599)
    assert api.runtime(SPACE)["stage"] == "RUNNING"
    still_hub.advance(2)
    assert api.runtime(SPACE)["stage"] == "SLEEPING"


def test_a_visit_wakes_a_sleeping_space_on_the_same_hardware(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", stage="SLEEPING", **TIMINGS)

    woken = still_hub.visit(SPACE)
    still_hub.advance(5.1)

    assert seen(woken) == ("APP_STARTING", "t4-small", "t4-small")
    assert seen(api.runtime(SPACE)) == ("RUNNING", "t4-small", "t4-small")


@pytest.mark.parametrize(
    ("hardware", "sleep_time", "asleep_after"),
    [("cpu-basic", None, 48 * 3600), ("a10g-large", None, None), ("a10g-large", -1, None)],
    ids=["cpu-basic-sleeps-after-48h", "paid-default-never-sleeps", "paid-minus-one-never-sleeps"],
)
def test_default_sleep_times(
    still_hub: HubEmulator, api: Any, hardware: str, sleep_time: int | None, asleep_after: float | None
) -> None:
    still_hub.add_space(SPACE, hardware=hardware, sleep_time=sleep_time)

    still_hub.advance(48 * 3600 - 1)
    assert api.runtime(SPACE)["stage"] == "RUNNING"
    still_hub.advance(30 * 24 * 3600)
    assert api.runtime(SPACE)["stage"] == ("SLEEPING" if asleep_after else "RUNNING")


def test_a_static_space_runs_without_hardware(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, sdk="static", hardware=None)

    runtime = api.runtime(SPACE)

    assert seen(runtime) == ("RUNNING", None, None)
    assert "gcTimeout" not in runtime


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("pause", None),
        ("restart", None),
        ("hardware", {"flavor": "t4-small"}),
        ("sleeptime", {"seconds": 600}),
        ("dev-mode", {"enabled": True}),
    ],
    ids=["pause", "restart", "hardware", "sleeptime", "dev-mode"],
)
def test_a_static_space_refuses_runtime_changes(
    still_hub: HubEmulator, api: Any, path: str, body: dict[str, Any] | None
) -> None:
    still_hub.add_space(SPACE, sdk="static", hardware=None)

    answer = api.post(f"/api/spaces/{SPACE}/{path}", json=body)

    assert answer.status_code == 400
    assert "static Space" in answer.json()["error"]


def test_a_secret_change_restarts_a_running_app(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", **TIMINGS)

    api.post(f"/api/spaces/{SPACE}/secrets", json={"key": "API_KEY", "value": "s3cr3t"})

    assert seen(api.runtime(SPACE)) == ("APP_STARTING", "t4-small", "t4-small")
    still_hub.advance(5.1)
    assert api.runtime(SPACE)["stage"] == "RUNNING"


def test_a_variable_change_restarts_a_running_app_but_the_same_value_does_not(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", variables={"MODEL": "gpt2"}, **TIMINGS)

    api.post(f"/api/spaces/{SPACE}/variables", json={"key": "MODEL", "value": "gpt2"})
    unchanged = api.runtime(SPACE)["stage"]
    api.post(f"/api/spaces/{SPACE}/variables", json={"key": "MODEL", "value": "llama"})
    changed = api.runtime(SPACE)["stage"]
    still_hub.advance(5.1)
    api.delete(f"/api/spaces/{SPACE}/variables", json={"key": "MODEL"})

    assert (unchanged, changed) == ("RUNNING", "APP_STARTING")
    assert api.runtime(SPACE)["stage"] == "APP_STARTING"


@pytest.mark.parametrize(
    "stage", ["CONFIG_ERROR", "NO_APP_FILE", "A_STAGE_FROM_THE_FUTURE"], ids=["config", "no-app", "unknown"]
)
def test_seeded_stages_are_served_as_they_are(still_hub: HubEmulator, api: Any, stage: str) -> None:
    still_hub.add_space(SPACE, stage=stage, error_message="bad README header")

    runtime = api.runtime(SPACE)
    still_hub.advance(3600)

    assert runtime["stage"] == stage
    assert api.runtime(SPACE)["stage"] == stage
    assert runtime.get("errorMessage") == (
        "bad README header" if stage != "A_STAGE_FROM_THE_FUTURE" else None
    )


@pytest.mark.parametrize(
    ("stage", "then"),
    [
        ("RUNNING_BUILDING", "RUNNING_APP_STARTING"),
        ("RUNNING_APP_STARTING", "RUNNING"),
        ("APP_STARTING", "RUNNING"),
    ],
    ids=["running-building", "running-app-starting", "app-starting"],
)
def test_seeded_stages_in_motion_settle(still_hub: HubEmulator, api: Any, stage: str, then: str) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", stage=stage, build_seconds=20, start_seconds=5)

    assert api.runtime(SPACE)["stage"] == stage
    still_hub.advance(20.1 if stage == "RUNNING_BUILDING" else 5.1)
    assert api.runtime(SPACE)["stage"] == then
    still_hub.advance(30)
    assert seen(api.runtime(SPACE)) == ("RUNNING", "t4-small", "t4-small")
