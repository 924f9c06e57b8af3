"""Scripted faults: each one, its count or time window, and its scope (one Space or the server)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_spaces.emulator.faults import FAULT_OPTIONS, FaultError
from airflow_provider_spaces.emulator.server import HubEmulator

SPACE = "demo/app"
OTHER = "demo/other"
TIMINGS = {"build_seconds": 20, "start_seconds": 5, "schedule_seconds": 5}
SETTLED = 5 + 20 + 5 + 1


@pytest.fixture
def two(still_hub: HubEmulator) -> HubEmulator:
    still_hub.add_space(SPACE, **TIMINGS)
    still_hub.add_space(OTHER, **TIMINGS)
    return still_hub


def _upgrade(api: Any, space_id: str = SPACE, flavor: str = "t4-small") -> requests.Response:
    return api.post(f"/api/spaces/{space_id}/hardware", json={"flavor": flavor})


def test_a_build_error_ends_the_build_with_the_message_once(two: HubEmulator, api: Any) -> None:
    two.add_fault("build_error", space_id=SPACE, count=1, message="pip install failed")

    _upgrade(api)
    two.advance(SETTLED)
    failed = api.runtime(SPACE)
    _upgrade(api, flavor="t4-medium")
    two.advance(SETTLED)

    assert failed["stage"] == "BUILD_ERROR"
    assert failed["errorMessage"] == "pip install failed"
    assert failed["hardware"] == {"current": None, "requested": "t4-small"}
    assert api.runtime(SPACE)["stage"] == "RUNNING"


def test_a_runtime_error_follows_a_good_start(two: HubEmulator, api: Any) -> None:
    two.add_fault("runtime_error", space_id=SPACE, message="CUDA out of memory", after_seconds=60)

    _upgrade(api)
    two.advance(SETTLED)
    running = api.runtime(SPACE)
    two.advance(60)
    crashed = api.runtime(SPACE)

    assert running["stage"] == "RUNNING"
    assert crashed["stage"] == "RUNTIME_ERROR"
    assert crashed["errorMessage"] == "CUDA out of memory"
    assert crashed["hardware"]["current"] == "t4-small"


@pytest.mark.parametrize("stage", ["BUILDING", "APP_STARTING"], ids=["building", "app-starting"])
def test_a_stuck_stage_never_settles(two: HubEmulator, api: Any, stage: str) -> None:
    two.add_fault("stuck", space_id=SPACE, stage=stage)

    _upgrade(api)
    two.advance(24 * 3600)

    assert api.runtime(SPACE)["stage"] == stage
    assert api.runtime(OTHER)["stage"] == "RUNNING"


def test_a_flavor_without_capacity_keeps_the_space_building_on_the_old_flavor(
    two: HubEmulator, api: Any
) -> None:
    two.add_fault("no_capacity", flavor="a100-large")

    accepted = _upgrade(api, flavor="a100-large")
    _upgrade(api, OTHER, flavor="t4-small")
    two.advance(24 * 3600)

    assert accepted.status_code == 200
    runtime = api.runtime(SPACE)
    assert (runtime["stage"], runtime["hardware"]["current"]) == ("BUILDING", "cpu-basic")
    assert api.runtime(OTHER)["hardware"]["current"] == "t4-small"


def test_a_flavor_without_capacity_can_refuse_the_request(two: HubEmulator, api: Any) -> None:
    two.add_fault("no_capacity", flavor="a100-large", refuse=True, status=409, count=1)

    refused = _upgrade(api, flavor="a100-large")
    accepted = _upgrade(api, flavor="a100-large")

    assert refused.status_code == 409
    assert refused.headers["X-Error-Code"] == "NoCapacity"
    assert "No capacity available for hardware a100-large" in refused.json()["error"]
    assert accepted.status_code == 200


def test_a_burst_of_server_errors_lasts_its_count(two: HubEmulator, api: Any) -> None:
    two.add_fault("server_error", count=3, status=502)

    statuses = [api.get(f"/api/spaces/{SPACE}/runtime").status_code for _ in range(4)]

    assert statuses == [502, 502, 502, 200]


def test_a_server_error_for_one_space_and_one_method_spares_the_rest(two: HubEmulator, api: Any) -> None:
    two.add_fault("server_error", space_id=SPACE, method="POST", count=5)

    read = api.get(f"/api/spaces/{SPACE}/runtime")
    other = api.post(f"/api/spaces/{OTHER}/pause")
    hit = api.post(f"/api/spaces/{SPACE}/pause")

    assert (read.status_code, other.status_code, hit.status_code) == (200, 200, 503)
    assert hit.headers["X-Error-Code"] == "ServerError"
    assert "X-Request-Id" in hit.headers and "RateLimit" in hit.headers


@pytest.mark.parametrize(
    ("headers", "retry_after", "ratelimit"),
    [("both", "7", '"api";r=0;t=7'), ("retry_after", "7", None), ("ratelimit", None, '"api";r=0;t=7')],
    ids=["retry-after-and-ratelimit", "retry-after-only", "ratelimit-only"],
)
def test_rate_limit_answers_429_with_the_chosen_headers(
    two: HubEmulator, api: Any, headers: str, retry_after: str | None, ratelimit: str | None
) -> None:
    two.add_fault("rate_limit", count=1, retry_after=7, headers=headers)

    limited = api.get(f"/api/spaces/{SPACE}/runtime")
    after = api.get(f"/api/spaces/{SPACE}/runtime")

    assert limited.status_code == 429
    assert limited.headers.get("Retry-After") == retry_after
    if ratelimit is not None:
        assert limited.headers["RateLimit"] == ratelimit
    else:
        assert not limited.headers["RateLimit"].startswith('"api";r=0;')
    assert after.status_code == 200


def test_the_per_token_quota_refuses_calls_past_the_limit_until_the_window_ends(
    two: HubEmulator, api: Any, make_api: Any
) -> None:
    two.set_quota(3, 60)
    other = make_api(two.add_token("alice"))

    statuses = [api.get(f"/api/spaces/{SPACE}/runtime").status_code for _ in range(3)]
    refused = api.get(f"/api/spaces/{SPACE}/runtime")
    elsewhere = other.get(f"/api/spaces/{SPACE}/runtime")
    two.advance(60)
    renewed = api.get(f"/api/spaces/{SPACE}/runtime")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["RateLimit"].startswith('"api";r=0;')
    assert refused.headers["RateLimit-Policy"] == '"fixed window";"api";q=3;w=60'
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 requests per 60 seconds" in refused.json()["error"]
    assert elsewhere.status_code == 200
    assert renewed.status_code == 200 and renewed.headers["RateLimit"].startswith('"api";r=2;')


def test_a_slow_answer_makes_a_short_client_timeout_expire(two: HubEmulator, api: Any) -> None:
    two.add_fault("slow", count=1, delay=2.0)

    with pytest.raises(requests.Timeout):
        api.session.get(f"{api.url}/api/spaces/{SPACE}/runtime", timeout=0.2)
    assert api.get(f"/api/spaces/{SPACE}/runtime").status_code == 200


def test_a_slow_answer_still_arrives(two: HubEmulator, api: Any) -> None:
    two.add_fault("slow", count=1, delay=0.2)

    assert api.get(f"/api/spaces/{SPACE}/runtime").status_code == 200
    assert two.request_log()[-1]["fault"] == "slow"


def test_a_dropped_connection_gives_no_complete_response(two: HubEmulator, api: Any) -> None:
    two.add_fault("drop", count=1)

    # The answer is cut short after its first bytes, so the client fails while reading the body.
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        api.get(f"/api/spaces/{SPACE}/runtime")
    after = api.get(f"/api/spaces/{SPACE}/runtime")

    assert after.status_code == 200
    dropped = two.request_log()[0]
    assert (dropped["fault"], dropped["status"]) == ("drop", None)


def test_a_drop_after_acting_loses_the_answer_of_a_request_the_hub_carried_out(
    two: HubEmulator, api: Any
) -> None:
    two.add_fault("drop", space_id=SPACE, method="POST", after_acting=True, count=1)

    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        _upgrade(api, flavor="t4-small")

    assert two.runtime(SPACE)["hardware"]["requested"] == "t4-small"
    dropped = two.request_log()[-1]
    assert (dropped["fault"], dropped["status"]) == ("drop", 200)
    assert api.runtime(SPACE)["hardware"]["requested"] == "t4-small"


def test_a_refused_downgrade_replays_a_hub_that_blocks_the_teardown(two: HubEmulator, api: Any) -> None:
    two.add_space("demo/gpu", hardware="a10g-large", **TIMINGS)
    two.add_fault("refuse", action="hardware", flavor="cpu-basic", count=2)

    upgrade = _upgrade(api, flavor="t4-small")
    refusals = [_upgrade(api, "demo/gpu", flavor="cpu-basic") for _ in range(2)]
    pause = api.post("/api/spaces/demo/gpu/pause")
    third = _upgrade(api, "demo/gpu", flavor="cpu-basic")

    assert upgrade.status_code == 200
    assert [r.status_code for r in refusals] == [403, 403]
    assert refusals[0].headers["X-Error-Code"] == "QuotaExceeded"
    assert "refused to hardware Space demo/gpu" in refusals[0].json()["error"]
    assert pause.status_code == 200
    assert third.status_code == 200


def test_a_refusal_can_be_a_server_error_with_its_own_message(two: HubEmulator, api: Any) -> None:
    two.add_fault("refuse", space_id=SPACE, action="pause", status=500, message="pause backend down")

    answer = api.post(f"/api/spaces/{SPACE}/pause")

    assert answer.status_code == 500
    assert answer.json()["error"] == "pause backend down"
    assert api.post(f"/api/spaces/{OTHER}/pause").status_code == 200


def test_a_fault_with_a_time_window_lapses(two: HubEmulator, api: Any) -> None:
    two.add_fault("server_error", seconds=60)

    during = api.get(f"/api/spaces/{SPACE}/runtime")
    two.advance(61)
    after = api.get(f"/api/spaces/{SPACE}/runtime")

    assert (during.status_code, after.status_code) == (503, 200)
    assert two.faults() == []


def test_faults_are_listed_until_used_up_and_can_be_cleared(two: HubEmulator, api: Any) -> None:
    two.add_fault("server_error", count=2)
    two.add_fault("build_error", space_id=SPACE)

    api.get(f"/api/spaces/{SPACE}/runtime")
    listed = two.faults()
    two.clear_faults()

    assert [(f["kind"], f["remaining"], f["used"]) for f in listed] == [
        ("server_error", 1, 1),
        ("build_error", None, 0),
    ]
    assert two.faults() == []


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("meteor", {}, "unknown fault kind 'meteor'"),
        ("slow", {"seconds_late": 3}, "takes no option seconds_late"),
        ("stuck", {"stage": "RUNNING"}, "stage must be BUILDING or APP_STARTING"),
        ("no_capacity", {}, "needs the flavor"),
        ("refuse", {"action": "teleport"}, "action must be one of"),
        ("server_error", {"status": 404}, "status must be 5xx"),
        ("rate_limit", {"headers": "some"}, "headers must be one of"),
        ("drop", {"count": 0}, "count must be a whole number, 1 or more, not 0"),
    ],
    ids=[
        "unknown-kind",
        "unknown-option",
        "stuck-running",
        "capacity-without-flavor",
        "unknown-action",
        "server-error-4xx",
        "rate-limit-style",
        "zero-count",
    ],
)
def test_a_fault_script_that_makes_no_sense_is_refused(
    still_hub: HubEmulator, kind: str, options: dict[str, Any], message: str
) -> None:
    options = dict(options)
    count = options.pop("count", None)

    with pytest.raises(FaultError, match=message):
        still_hub.add_fault(kind, count=count, **options)


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("rate_limit", {"retry_after": "soon"}, r"rate_limit: retry_after must be a whole number of seconds"),
        ("rate_limit", {"retry_after": -5}, r"rate_limit: retry_after must be a whole number of seconds"),
        ("rate_limit", {"retry_after": 2.5}, r"rate_limit: retry_after must be a whole number of seconds"),
        ("rate_limit", {"retry_after": True}, r"rate_limit: retry_after must be a whole number of seconds"),
        (
            "rate_limit",
            {"retry_after": 10**9},
            r"retry_after must be a whole number of seconds from 0 to 86400",
        ),
        ("slow", {"delay": 1e12}, r"slow: delay must be a number of seconds from 0 to 300"),
        ("slow", {"delay": -1}, r"slow: delay must be a number of seconds"),
        ("slow", {"delay": float("nan")}, r"slow: delay must be a number of seconds"),
        ("slow", {"delay": "1"}, r"slow: delay must be a number of seconds"),
        ("runtime_error", {"after_seconds": float("inf")}, r"runtime_error: after_seconds must be a number"),
        ("build_error", {"message": 7}, r"build_error: message must be a string"),
        ("server_error", {"status": "503"}, r"server_error: status must be 5xx"),
        ("refuse", {"action": "pause", "status": True}, r"refuse: status must be an HTTP error status"),
        (
            "no_capacity",
            {"flavor": "a100-large", "refuse": "yes"},
            r"no_capacity: refuse must be true or false",
        ),
        ("drop", {"method": "TELEPORT"}, r"drop: method must be one of DELETE, GET"),
        ("drop", {"count": "x"}, r"count must be a whole number, 1 or more, not 'x'"),
        ("drop", {"count": 1.5}, r"count must be a whole number"),
        ("drop", {"seconds": float("nan")}, r"seconds must be a number above 0"),
        ("drop", {"seconds": "10"}, r"seconds must be a number above 0"),
    ],
    ids=[
        "retry-after-text",
        "retry-after-negative",
        "retry-after-fraction",
        "retry-after-boolean",
        "retry-after-huge",
        "delay-huge",
        "delay-negative",
        "delay-nan",
        "delay-text",
        "crash-delay-infinite",
        "message-not-text",
        "status-text",
        "status-boolean",
        "refuse-not-a-flag",
        "unknown-method",
        "count-text",
        "count-fraction",
        "seconds-nan",
        "seconds-text",
    ],
)
def test_every_fault_option_is_checked_when_the_fault_is_added(
    still_hub: HubEmulator, kind: str, options: dict[str, Any], message: str
) -> None:
    options = dict(options)
    window = {name: options.pop(name) for name in ("count", "seconds") if name in options}

    with pytest.raises(FaultError, match=message):
        still_hub.add_fault(kind, space_id=SPACE, **window, **options)

    assert still_hub.faults() == []


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "rate_limit", "retry_after": "soon"},
        {"kind": "rate_limit", "retry_after": -5},
        {"kind": "slow", "delay": 1e12},
        {"kind": "drop", "count": "x"},
    ],
    ids=["retry-after-text", "retry-after-negative", "delay-huge", "count-text"],
)
def test_the_admin_endpoint_refuses_a_bad_fault_with_400_naming_the_field(
    still_hub: HubEmulator, api: Any, body: dict[str, Any]
) -> None:
    still_hub.add_space(SPACE)
    field = next(name for name in body if name != "kind")

    answer = api.session.post(f"{api.url}/_emulator/faults", json=body, timeout=10)

    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert api.get(f"/api/spaces/{SPACE}/runtime").status_code == 200


def test_a_rate_limit_without_retry_after_still_waits_for_the_window(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE)
    still_hub.add_fault("rate_limit", space_id=SPACE, retry_after=None, headers="ratelimit", count=1)

    answer = api.get(f"/api/spaces/{SPACE}/runtime")

    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers
    assert answer.headers["RateLimit"].startswith('"api";r=0;t=')


@pytest.mark.parametrize("kind", sorted(FAULT_OPTIONS), ids=sorted(FAULT_OPTIONS))
def test_every_fault_kind_can_be_added_with_its_default_options(two: HubEmulator, kind: str) -> None:
    # A kind whose options lack a check would refuse even its own defaults.
    fault = two.add_fault(kind, space_id="demo/app", **_filled(FAULT_OPTIONS[kind]))

    assert fault["kind"] == kind


def _filled(defaults: dict[str, Any]) -> dict[str, Any]:
    """Return the defaults with a value of the right type where the default is None."""
    values = {"flavor": "a10g-large", "action": "hardware", "method": "POST", "message": "emulated"}
    return {name: values.get(name, value) if value is None else value for name, value in defaults.items()}
