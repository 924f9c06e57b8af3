"""The request log: what each API call was, who sent it and how it was answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_spaces.emulator.server import HubEmulator

SPACE = "demo/app"


def test_each_request_is_logged_with_its_answer_and_times(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(f"/api/spaces/{SPACE}/restart", params={"factory": "true"})
    entry = still_hub.request_log()[-1]

    assert entry["request_id"] == answer.headers["X-Request-Id"]
    assert (entry["method"], entry["path"], entry["query"]) == (
        "POST",
        f"/api/spaces/{SPACE}/restart",
        {"factory": "true"},
    )
    assert (entry["status"], entry["owner"], entry["space_id"], entry["fault"]) == (200, "demo", SPACE, None)
    assert entry["real_time"] > 0 and entry["emulated_time"] > 0


def test_the_json_body_is_logged(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "t4-small", "sleepTimeSeconds": 600})

    assert still_hub.request_log()[-1]["body"] == {"flavor": "t4-small", "sleepTimeSeconds": 600}


def test_the_log_can_be_filtered_by_space(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)
    still_hub.add_space("demo/other")

    api.runtime(SPACE)
    api.runtime("demo/other")
    api.get("/api/whoami-v2")

    assert [e["path"] for e in still_hub.request_log(SPACE)] == [f"/api/spaces/{SPACE}/runtime"]
    assert len(still_hub.request_log()) == 3


def test_refused_requests_are_logged_with_their_status_and_caller(
    still_hub: HubEmulator, make_api: Any
) -> None:
    still_hub.add_space(SPACE)

    make_api(None).get(f"/api/spaces/{SPACE}/runtime")
    make_api(still_hub.read_token).post(f"/api/spaces/{SPACE}/pause")

    assert [(e["status"], e["owner"]) for e in still_hub.request_log()] == [(401, None), (401, "demo")]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("secrets", {"key": "API_KEY", "value": "do-not-log-me"}),
        ("duplicate", {"repository": "demo/copy", "secrets": [{"key": "API_KEY", "value": "do-not-log-me"}]}),
    ],
    ids=["secret", "duplicate-secrets"],
)
def test_secret_values_and_tokens_never_reach_the_log(
    still_hub: HubEmulator, api: Any, path: str, body: dict[str, Any]
) -> None:
    still_hub.add_space(SPACE)

    api.post(f"/api/spaces/{SPACE}/{path}", json=body)
    logged = json.dumps(still_hub.request_log())

    assert "do-not-log-me" not in logged
    assert still_hub.write_token not in logged
    assert "API_KEY" in logged


def test_scripting_calls_are_not_logged(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    api.session.get(f"{api.url}/_emulator/ledger", timeout=10)

    assert still_hub.request_log() == []


def test_the_log_keeps_only_the_newest_requests() -> None:
    with HubEmulator(speed=1, log_size=2) as hub:
        hub.add_space(SPACE)
        headers = {"Authorization": f"Bearer {hub.write_token}"}
        for path in ("runtime", "variables", "secrets"):
            requests.get(f"{hub.url}/api/spaces/{SPACE}/{path}", headers=headers, timeout=10)

        assert [e["path"].rsplit("/", 1)[1] for e in hub.request_log()] == ["variables", "secrets"]


def test_secret_values_and_tokens_never_show_in_a_repr(still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE, secrets={"API_KEY": "do-not-show-me"})
    caller = still_hub.hub.caller_for(f"Bearer {still_hub.write_token}", "127.0.0.1")

    shown = repr(still_hub.hub.spaces[SPACE]) + repr(caller) + repr(still_hub)

    assert "do-not-show-me" not in shown
    assert still_hub.write_token not in shown


BAD_BODIES = [
    (b'{"seconds": NaN}', "NaN is not a JSON number"),
    (b'{"seconds": Infinity}', "Infinity is not a JSON number"),
    (b'{"seconds": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"seconds": 1e400}', "1e400 is out of the range of a JSON number"),
    (b'{"key": "K", "value": "\\ud800"}', "lone surrogate"),
    (b"[" * 200_000 + b"]" * 200_000, "nested deeper than 32 levels"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested deeper than 32 levels"),
    (b"not json", "Invalid JSON body: Expecting value"),
]
BAD_BODY_IDS = [
    "nan",
    "infinity",
    "minus-infinity",
    "float-overflow",
    "lone-surrogate",
    "deep-arrays",
    "deep-objects",
    "not-json",
]


@pytest.mark.parametrize(("raw", "message"), BAD_BODIES, ids=BAD_BODY_IDS)
def test_a_body_the_hub_would_not_parse_is_refused_and_logged(
    still_hub: HubEmulator, api: Any, raw: bytes, message: str
) -> None:
    still_hub.add_space(SPACE, hardware="a10g-small")

    answer = api.post(
        f"/api/spaces/{SPACE}/sleeptime", data=raw, headers={"Content-Type": "application/json"}
    )
    log_answer = api.session.get(f"{api.url}/_emulator/requests", timeout=10)

    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert (answer.headers["X-Error-Code"], answer.headers["X-Error-Message"]) == (
        "BadRequest",
        answer.json()["error"],
    )
    assert log_answer.status_code == 200, log_answer.text
    [entry] = log_answer.json()["result"]
    assert (entry["status"], entry["body"]) == (400, None)
    assert api.runtime(SPACE)["gcTimeout"] is None


@pytest.mark.parametrize(("raw", "message"), BAD_BODIES, ids=BAD_BODY_IDS)
def test_the_admin_api_refuses_a_body_it_cannot_parse(
    still_hub: HubEmulator, api: Any, raw: bytes, message: str
) -> None:
    answer = api.session.post(
        f"{api.url}/_emulator/faults", data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert still_hub.faults() == []


def test_a_lone_surrogate_in_a_secret_is_refused_without_quoting_it(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(
        f"/api/spaces/{SPACE}/secrets",
        data=b'{"key": "API_KEY", "value": "s3cr\\udfff"}',
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 400
    assert "s3cr" not in answer.text and "udfff" not in answer.text.lower()
    assert "s3cr" not in json.dumps(still_hub.request_log())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("secrets/", {"key": "API_KEY", "value": "do-not-log-me"}),
        ("secrets//", {"key": "API_KEY", "value": "do-not-log-me"}),
        ("SECRETS", {"key": "API_KEY", "value": "do-not-log-me"}),
        ("secrets", [{"key": "API_KEY", "value": "do-not-log-me"}]),
        ("secrets", "do-not-log-me"),
        ("secrets", {"key": "API_KEY", "value": {"nested": "do-not-log-me"}}),
        (
            "duplicate/",
            {"repository": "demo/copy", "secrets": [{"key": "API_KEY", "value": "do-not-log-me"}]},
        ),
        ("duplicate", {"repository": "demo/copy", "secrets": {"value": "do-not-log-me"}}),
        ("duplicate", {"repository": "demo/copy", "secrets": "do-not-log-me"}),
    ],
    ids=[
        "trailing-slash",
        "double-slash",
        "upper-case",
        "list-body",
        "string-body",
        "nested-value",
        "duplicate-trailing-slash",
        "duplicate-secrets-object",
        "duplicate-secrets-string",
    ],
)
def test_secret_values_are_masked_whatever_the_shape_of_the_path_or_body(
    still_hub: HubEmulator, api: Any, path: str, body: Any
) -> None:
    still_hub.add_space(SPACE)

    api.post(f"/api/spaces/{SPACE}/{path}", json=body)
    logged = json.dumps(still_hub.request_log())

    assert "do-not-log-me" not in logged
    assert still_hub.request_log(), "the request was not logged"
