"""SpaceStageTrigger against the emulated Hub: its one event for each outcome, its JSON, its secrets.

The trigger runs the way the triggerer runs it: ``run()`` iterated on an event loop, the
connection read inside it. The emulator's clock runs 60 times faster than real time, so a 30 s
build takes half a second; each test gets a token of its own, so that no test inherits another's
call budget.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator
from airflow_provider_spaces.hub import SpaceStageError
from airflow_provider_spaces.triggers.spaces import (
    InvalidTriggerEventError,
    SpaceStageEvent,
    SpaceStageTrigger,
    WaitStatus,
)

SPACE = "demo/trainer"
FAST = {"poll_interval": 0.05, "max_poll_interval": 0.2}


@pytest.fixture(scope="module")
def _shared_hub() -> Iterator[HubEmulator]:
    with HubEmulator(speed=60) as hub:
        yield hub


@pytest.fixture
def hub(_shared_hub: HubEmulator) -> HubEmulator:
    _shared_hub.reset()
    _shared_hub.set_speed(60)
    return _shared_hub


@pytest.fixture
def token(hub: HubEmulator) -> str:
    return hub.add_token("demo", role="write", orgs=["demo-org"])


@pytest.fixture
def connection(airflow_connection: Callable[..., str], hub: HubEmulator, token: str) -> str:
    return airflow_connection("emulated_hub", host=hub.url, password=token)


def trigger(conn_id: str, *, seconds: float = 20.0, **options: Any) -> SpaceStageTrigger:
    kwargs: dict[str, Any] = {"space_id": SPACE, "spaces_conn_id": conn_id, **FAST, **options}
    return SpaceStageTrigger(deadline=time.time() + seconds, **kwargs)


def events_of(watcher: SpaceStageTrigger) -> list[dict[str, Any]]:
    """Run the trigger to its end on a fresh event loop, as the triggerer would, and return its events."""

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in watcher.run()]

    return asyncio.run(collect())


# -- its keywords ----------------------------------------------------------------------------------


def test_serialized_keywords_are_plain_json_that_rebuild_the_trigger_and_hold_no_token(
    connection: str, token: str
) -> None:
    original = trigger(connection, target_stages=["RUNNING", "SLEEPING"], hardware="a10g-large")

    path, kwargs = original.serialize()
    module, _, name = path.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))

    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs["target_stages"] == ["RUNNING", "SLEEPING"]
    assert set(kwargs) == {
        "space_id",
        "deadline",
        "target_stages",
        "hardware",
        "spaces_conn_id",
        "poll_interval",
        "max_poll_interval",
        "leaving",
    }
    assert token not in json.dumps(kwargs)
    assert token not in repr(original)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"space_id": "no-slash"}, "Invalid space_id"),
        ({"target_stages": []}, "Invalid target_stages: must name at least one stage"),
        ({"deadline": float("nan")}, "Invalid deadline"),
        ({"poll_interval": 0}, "Invalid poll_interval"),
        ({"poll_interval": 60, "max_poll_interval": 10}, "Invalid max_poll_interval"),
    ],
    ids=["bad-space-id", "no-target", "no-deadline", "zero-interval", "cap-below-interval"],
)
def test_bad_keywords_are_refused_before_the_task_defers(options: dict[str, Any], match: str) -> None:
    kwargs: dict[str, Any] = {"space_id": SPACE, "deadline": time.time() + 60, **options}

    with pytest.raises(ValueError, match=match):
        SpaceStageTrigger(**kwargs)


# -- one event per outcome -------------------------------------------------------------------------


def test_a_space_that_builds_and_runs_ends_the_wait_with_success(hub: HubEmulator, connection: str) -> None:
    hub.add_space(SPACE, stage="BUILDING", build_seconds=90, start_seconds=10)

    [event] = events_of(trigger(connection))

    assert event["status"] == "success"
    assert event["reason"] == "reached"
    assert event["runtime"]["stage"] == "RUNNING"
    assert event["request_id"]
    assert event["message"] == f"Space {SPACE} is RUNNING on cpu-basic"
    stages = [entry["path"] for entry in hub.request_log(SPACE)]
    assert len(stages) >= 2  # it did wait through the build


def test_a_hardware_wait_succeeds_only_once_the_flavor_runs(
    hub: HubEmulator, connection: str, token: str
) -> None:
    hub.add_space(SPACE, hardware="cpu-basic", stage="RUNNING", build_seconds=30)
    from airflow_provider_spaces.hub.client import SpacesClient

    with SpacesClient(endpoint=hub.url, token=token) as client:
        client.request_space_hardware(SPACE, "a10g-small")

    [event] = events_of(trigger(connection, hardware="a10g-small"))

    assert event["status"] == "success"
    assert (event["runtime"]["stage"], event["runtime"]["hardware"]) == ("RUNNING", "a10g-small")


def test_an_error_stage_fails_the_wait_at_once_with_the_hubs_message(
    hub: HubEmulator, connection: str
) -> None:
    hub.add_space(SPACE, stage="BUILD_ERROR", error_message="pip install failed: no such package")

    [event] = events_of(trigger(connection, seconds=600))

    assert (event["status"], event["reason"]) == ("failed", "error_stage")
    assert "pip install failed: no such package" in event["message"]
    assert f"request id {event['request_id']}" in event["message"]
    assert len(hub.request_log(SPACE)) == 1
    error = SpaceStageEvent.from_payload(event).stage_error()
    assert isinstance(error, SpaceStageError)
    assert (error.stage, error.hub_message, error.request_id) == (
        "BUILD_ERROR",
        "pip install failed: no such package",
        event["request_id"],
    )


def test_a_paused_space_fails_the_wait_since_it_will_not_start_by_itself(
    hub: HubEmulator, connection: str
) -> None:
    hub.add_space(SPACE, stage="PAUSED")

    [event] = events_of(trigger(connection, seconds=600))

    assert (event["status"], event["reason"]) == ("failed", "dead_end")
    assert "is PAUSED and will not become RUNNING by itself" in event["message"]


def test_the_stage_a_task_moved_the_space_from_does_not_fail_the_wait_until_it_changes(
    hub: HubEmulator, connection: str
) -> None:
    # Just after a restart the Hub may still answer PAUSED; the wait must not take that for a dead end.
    hub.add_space(SPACE, stage="PAUSED")

    [event] = events_of(trigger(connection, seconds=0.5, leaving="PAUSED"))

    assert (event["status"], event["reason"]) == ("timeout", "deadline")
    assert event["runtime"]["stage"] == "PAUSED"


def test_the_wait_times_out_at_its_own_deadline_naming_the_last_stage(
    hub: HubEmulator, connection: str
) -> None:
    hub.add_space(SPACE, stage="BUILDING", build_seconds=24 * 3600)

    [event] = events_of(trigger(connection, seconds=0.5))

    assert (event["status"], event["reason"]) == ("timeout", "deadline")
    assert event["runtime"]["stage"] == "BUILDING"
    assert "did not become RUNNING by " in event["message"]
    assert "last seen BUILDING, cpu-basic requested" in event["message"]
    assert f"request id {event['request_id']}" in event["message"]
    assert SpaceStageEvent.from_payload(event).transient


def test_a_space_the_hub_does_not_know_is_an_error_event_with_the_request_id(
    hub: HubEmulator, connection: str
) -> None:
    [event] = events_of(trigger(connection))

    assert (event["status"], event["reason"]) == ("error", "final_hub_error")
    assert "Repository not found" in event["message"]
    assert event["request_id"] and event["request_id"] in event["message"]
    assert not SpaceStageEvent.from_payload(event).transient


def test_a_hub_failing_past_the_retries_is_a_transient_error_event(
    hub: HubEmulator, airflow_connection: Callable[..., str], token: str
) -> None:
    hub.add_space(SPACE, stage="BUILDING")
    hub.add_fault("server_error", status=503)
    conn_id = airflow_connection("flaky_hub", host=hub.url, password=token, extra={"max_retries": 0})

    [event] = events_of(trigger(conn_id))

    assert (event["status"], event["reason"]) == ("error", "transient_hub_error")
    assert "HTTP 503" in event["message"]
    assert SpaceStageEvent.from_payload(event).transient


def test_a_connection_that_does_not_exist_is_an_error_event_naming_it() -> None:
    [event] = events_of(trigger("no_such_connection"))

    assert (event["status"], event["reason"]) == ("error", "unexpected_error")
    assert "Connection 'no_such_connection' is not defined" in event["message"]


def test_neither_events_nor_log_lines_hold_the_token(
    hub: HubEmulator, connection: str, token: str, caplog: pytest.LogCaptureFixture, airflow_logs: Any
) -> None:
    hub.add_space(SPACE, stage="BUILDING")

    with caplog.at_level(logging.DEBUG):
        events = events_of(trigger(connection)) + events_of(trigger(connection, space_id="demo/none"))

    logged = caplog.text + airflow_logs.text
    assert [event["status"] for event in events] == ["success", "error"]
    assert token not in json.dumps(events)
    assert token not in logged
    assert f"Space {SPACE}: wait ended (success, reached)" in logged
    assert "Space demo/none: wait ended (error, final_hub_error)" in logged


def test_an_unexpected_error_that_quotes_the_token_reaches_the_task_without_it(
    hub: HubEmulator, connection: str, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add_space(SPACE, stage="BUILDING")

    def leaky_check(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"could not judge the read made with {token}")

    monkeypatch.setattr("airflow_provider_spaces.triggers.spaces.check_stage", leaky_check)

    [event] = events_of(trigger(connection))

    assert (event["status"], event["reason"]) == ("error", "unexpected_error")
    assert "could not judge the read made with ***" in event["message"]
    assert token not in json.dumps(event)


def test_every_trigger_writes_through_one_logger(connection: str) -> None:
    # The triggerer tells the lines of its triggers apart by context, so one logger serves them
    # all; a logger per trigger would cost a thousand waits about a megabyte.
    first, second = trigger(connection), trigger(connection, space_id="demo/other")

    assert first.log is second.log
    assert first.log is SpaceStageTrigger.logger()


def test_many_triggers_on_one_loop_stay_within_the_quota_and_each_gets_its_event(
    hub: HubEmulator, connection: str
) -> None:
    # Real time here, so that the quota the Hub announces is the one the budget lives by: forty
    # watchers that would poll hundreds of times a second share 50 calls a second.
    hub.set_speed(1)
    hub.set_quota(50, window_seconds=1)
    spaces = [f"demo/app-{number}" for number in range(40)]
    for number, space_id in enumerate(spaces):
        hub.add_space(space_id, stage="BUILDING", build_seconds=1.5 + 0.02 * number, start_seconds=0)

    async def watch_all() -> list[list[dict[str, Any]]]:
        async def one(space_id: str) -> list[dict[str, Any]]:
            return [event.payload async for event in trigger(connection, space_id=space_id).run()]

        return await asyncio.gather(*(one(space_id) for space_id in spaces))

    results = asyncio.run(watch_all())

    assert [[event["space_id"] for event in events] for events in results] == [[space] for space in spaces]
    assert {events[0]["status"] for events in results} == {"success"}
    statuses = Counter(entry["status"] for entry in hub.request_log())
    assert statuses[429] == 0
    assert statuses[200] > 50  # more reads than one window allows: the budget spread them


def test_triggers_stopped_while_queued_for_a_turn_let_the_others_through_and_close_the_pool(
    airflow_connection: Callable[..., str], hub: HubEmulator, token: str
) -> None:
    # A quota of 200 calls per 10 s paces the thirty waits at 18 reads a second after a burst
    # of ten: a third of a second in, most are queued for a turn, the first of them holding the
    # turn while it sleeps until the budget lets it go, when all but the last three are stopped,
    # as the triggerer stops the trigger of a task that was cleared or marked.
    hub.set_speed(1)
    hub.set_quota(200, window_seconds=10)
    conn_id = airflow_connection(
        "queued_hub",
        host=hub.url,
        password=token,
        extra=json.dumps({"rate_limit_quota": 200, "rate_limit_window": 10}),
    )
    spaces = [f"demo/queued-{number}" for number in range(30)]
    for space_id in spaces:
        hub.add_space(space_id, stage="BUILDING", build_seconds=0.5, start_seconds=0)
    watchers = [trigger(conn_id, space_id=space_id, seconds=5) for space_id in spaces]

    async def stop_most() -> list[Any]:
        async def collect(watcher: SpaceStageTrigger) -> list[dict[str, Any]]:
            return [event.payload async for event in watcher.run()]

        waits = [asyncio.ensure_future(collect(watcher)) for watcher in watchers]
        await asyncio.sleep(0.3)
        for wait in waits[:-3]:
            wait.cancel()
        return await asyncio.gather(*waits, return_exceptions=True)

    results = asyncio.run(stop_most())

    assert all(isinstance(result, asyncio.CancelledError) for result in results[:-3])
    # Had a stopped wait kept its turn, the others would have waited for it until their deadline.
    assert [events[0]["status"] for events in results[-3:]] == ["success"] * 3
    # The stopped waits gave up their uses of the loop's pool: the last wait to end closed it.
    client = watchers[-1]._client
    assert client is not None and client._http.is_closed


# -- reading the event back ------------------------------------------------------------------------

GOOD = {
    "status": "success",
    "reason": "reached",
    "message": f"Space {SPACE} is RUNNING on cpu-basic",
    "space_id": SPACE,
    "runtime": {"space_id": SPACE, "stage": "RUNNING", "hardware": "cpu-basic"},
    "request_id": "req-1",
}


def test_an_event_reads_back_to_what_the_trigger_sent() -> None:
    event = SpaceStageEvent.from_payload(GOOD)

    assert event.status is WaitStatus.SUCCESS
    assert event.stage == "RUNNING"
    assert event.to_payload() == GOOD


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("success", "expected the trigger's event dict, got str"),
        ({k: v for k, v in GOOD.items() if k != "message"}, r"malformed trigger event \(missing message\)"),
        ({**GOOD, "token": "x"}, r"malformed trigger event \(unknown token\)"),
        ({**GOOD, "status": "done"}, "unknown event status 'done'"),
        ({**GOOD, "reason": None}, "event field 'reason' must be a string"),
        ({**GOOD, "runtime": ["RUNNING"]}, "event field 'runtime' must be a dict or null"),
        ({**GOOD, "request_id": 7}, "event field 'request_id' must be a string or null"),
    ],
    ids=[
        "not-a-dict",
        "missing-field",
        "unknown-field",
        "unknown-status",
        "null-reason",
        "list-runtime",
        "int-id",
    ],
)
def test_an_event_the_trigger_cannot_have_sent_is_refused(payload: Any, match: str) -> None:
    with pytest.raises(InvalidTriggerEventError, match=match):
        SpaceStageEvent.from_payload(payload)
