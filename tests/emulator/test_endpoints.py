"""Every row of the Hub API table, its bodies, status codes and headers, over raw HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator
from airflow_provider_spaces.hub.catalog import KNOWN_FLAVORS
from airflow_provider_spaces.hub.client import SpacesClient
from airflow_provider_spaces.hub.errors import BadRequestError

SPACE = "demo/app"


def test_every_answer_carries_a_request_id_and_the_rate_limit_headers(
    still_hub: HubEmulator, api: Any, make_api: Any
) -> None:
    still_hub.add_space(SPACE)

    answers = [
        api.get(f"/api/spaces/{SPACE}/runtime"),
        api.get("/api/spaces/demo/missing/runtime"),
        make_api(None).get(f"/api/spaces/{SPACE}/runtime"),
        api.get("/api/no/such/route"),
    ]

    assert [a.status_code for a in answers] == [200, 404, 401, 404]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert len(set(ids)) == len(ids)
    for answer in answers:
        assert re.fullmatch(r'"api";r=\d+;t=\d+', answer.headers["RateLimit"])
        assert answer.headers["RateLimit-Policy"] == '"fixed window";"api";q=1000;w=300'


def test_the_remaining_quota_counts_down_per_token(still_hub: HubEmulator, api: Any, make_api: Any) -> None:
    still_hub.add_space(SPACE)
    other = make_api(still_hub.add_token("alice"))

    first = api.get(f"/api/spaces/{SPACE}/runtime").headers["RateLimit"]
    second = api.get(f"/api/spaces/{SPACE}/runtime").headers["RateLimit"]
    alice = other.get(f"/api/spaces/{SPACE}/runtime").headers["RateLimit"]

    assert first.startswith('"api";r=999;')
    assert second.startswith('"api";r=998;')
    assert alice.startswith('"api";r=999;')


def test_errors_carry_the_error_code_and_message_headers_and_a_json_body(api: Any) -> None:
    answer = api.get("/api/spaces/demo/missing/runtime")

    assert answer.status_code == 404
    assert answer.headers["X-Error-Code"] == "RepoNotFound"
    assert answer.headers["X-Error-Message"] == "Repository not found"
    assert answer.json() == {"error": "Repository not found"}


def test_runtime_has_the_documented_keys(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space("demo/my_app", hardware="t4-small", sleep_time=3600, storage="small")

    runtime = api.runtime("demo/my_app")

    assert runtime == {
        "stage": "RUNNING",
        "hardware": {"current": "t4-small", "requested": "t4-small"},
        "gcTimeout": 3600,
        "storage": "small",
        "devMode": False,
        "replicas": {"requested": 1, "current": 1},
        "domains": [{"domain": "demo-my-app.hf.space", "stage": "READY"}],
    }


def test_an_error_stage_carries_the_error_message(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, stage="RUNTIME_ERROR", error_message="CUDA out of memory")

    assert api.runtime(SPACE)["errorMessage"] == "CUDA out of memory"


@pytest.mark.parametrize(
    ("flavor", "seconds", "status", "message"),
    [
        ("a10g-small", 900, 200, None),
        ("a10g-small", -1, 200, None),
        ("cpu-basic", 900, 400, "only be set on upgraded hardware"),
        ("zero-a10g", 900, 400, "ZeroGPU"),
        ("a10g-small", 0, 400, "Invalid sleep time"),
        ("a10g-small", "ten", 400, "must be of type int"),
    ],
    ids=["paid", "paid-never", "cpu-basic-refused", "zerogpu-refused", "zero-refused", "not-a-number"],
)
def test_sleep_time_is_set_only_on_paid_hardware(
    still_hub: HubEmulator, api: Any, flavor: str, seconds: Any, status: int, message: str | None
) -> None:
    still_hub.add_space(SPACE, hardware=flavor)

    answer = api.post(f"/api/spaces/{SPACE}/sleeptime", json={"seconds": seconds})

    assert answer.status_code == status, answer.text
    if message is None:
        assert answer.json()["gcTimeout"] == (seconds if seconds > 0 else None)
    else:
        assert message in answer.json()["error"]


def test_hardware_request_with_a_sleep_time_sets_it_at_once(api: Any, still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(
        f"/api/spaces/{SPACE}/hardware", json={"flavor": "a10g-large", "sleepTimeSeconds": 1800}
    )

    assert answer.status_code == 200
    assert answer.json()["gcTimeout"] == 1800
    assert answer.json()["hardware"] == {"current": "cpu-basic", "requested": "a10g-large"}


def test_moving_back_to_cpu_basic_restores_the_fixed_sleep_time(api: Any, still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE, hardware="a10g-large", sleep_time=1800)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "cpu-basic"})

    assert answer.json()["gcTimeout"] == 172800


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "Expected a JSON object with 'flavor'"),
        ({}, "Missing required field 'flavor'"),
        ({"flavor": 3}, "must be of type str"),
        ({"flavor": "A10G LARGE"}, "Invalid hardware flavor"),
        ({"flavor": "cpu-basic", "sleepTimeSeconds": 600}, "only be set on upgraded hardware"),
    ],
    ids=["no-body", "no-flavor", "flavor-not-a-string", "malformed-flavor", "sleep-on-cpu-basic"],
)
def test_hardware_request_rejects_bad_bodies(
    still_hub: HubEmulator, api: Any, body: Any, message: str
) -> None:
    still_hub.add_space(SPACE, hardware="t4-small")

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json=body)

    assert answer.status_code == 400
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("hardware", {"flavor": "a100-huge"}),
        ("duplicate", {"repository": "demo/copy", "hardware": "a100-huge"}),
    ],
    ids=["hardware-request", "duplicate"],
)
def test_a_flavor_the_catalog_lacks_is_refused_with_the_flavors_on_offer(
    still_hub: HubEmulator, api: Any, path: str, body: dict[str, Any]
) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(f"/api/spaces/{SPACE}/{path}", json=body)

    assert answer.status_code == 400
    assert answer.headers["X-Error-Code"] == "BadRequest"
    assert re.match(
        r"Invalid hardware flavor 'a100-huge': the available flavors are cpu-basic, ", answer.json()["error"]
    )
    assert "a10g-large" in answer.json()["error"]
    assert api.runtime(SPACE)["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}
    assert sorted(still_hub.hub.spaces) == [SPACE]


def test_a_mistyped_flavor_fails_offline_as_online_with_a_suggestion(still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE)

    with SpacesClient(endpoint=still_hub.url, token=still_hub.write_token) as client:
        with pytest.raises(BadRequestError, match=r"did you mean 'a10g-large'") as raised:
            client.request_space_hardware(SPACE, "a10g-lage")

    assert "Invalid hardware flavor 'a10g-lage'" in str(raised.value)
    assert still_hub.runtime(SPACE)["hardware"]["requested"] == "cpu-basic"


def test_a_flavor_priced_for_every_space_joins_the_catalog_and_can_be_requested(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE)
    still_hub.set_price("h200x1", 5.0)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "h200x1"})
    catalog = {entry["name"]: entry for entry in api.get("/api/spaces/hardware").json()}

    assert answer.status_code == 200, answer.text
    assert answer.json()["hardware"]["requested"] == "h200x1"
    assert catalog["h200x1"]["unitCostUSD"] == pytest.approx(5.0 / 60, abs=1e-6)


def test_a_price_for_one_space_offers_the_flavor_to_no_space(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)
    still_hub.set_price("h200x1", 5.0, space_id=SPACE)

    answer = api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "h200x1"})

    assert answer.status_code == 400
    assert "Invalid hardware flavor 'h200x1'" in answer.json()["error"]


def test_a_space_can_still_be_seeded_on_any_flavor(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="h200x1")

    assert api.runtime(SPACE)["hardware"] == {"current": "h200x1", "requested": "h200x1"}


def test_dev_mode_is_switched_on_and_off(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    on = api.post(f"/api/spaces/{SPACE}/dev-mode", json={"enabled": True})
    off = api.post(f"/api/spaces/{SPACE}/dev-mode", json={"enabled": False})

    assert (on.json()["devMode"], off.json()["devMode"]) == (True, False)


def test_secrets_are_upserted_listed_without_values_and_deleted(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)
    path = f"/api/spaces/{SPACE}/secrets"

    added = api.post(path, json={"key": "API_KEY", "value": "first", "description": "vendor key"})
    updated = api.post(path, json={"key": "API_KEY", "value": "second"})
    listed = api.get(path).json()
    deleted = api.delete(path, json={"key": "API_KEY"})
    deleted_again = api.delete(path, json={"key": "API_KEY"})

    assert [a.status_code for a in (added, updated, deleted, deleted_again)] == [200, 200, 200, 200]
    assert added.json() == {}
    assert list(listed) == ["API_KEY"]
    assert "value" not in listed["API_KEY"]
    assert "updatedAt" in listed["API_KEY"]
    assert "first" not in json.dumps(listed) and "second" not in json.dumps(listed)
    assert api.get(path).json() == {}


def test_variables_are_upserted_and_deleted_returning_the_whole_map(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, variables={"MODEL": "gpt2"})
    path = f"/api/spaces/{SPACE}/variables"

    added = api.post(path, json={"key": "BATCH", "value": "8", "description": "batch size"}).json()
    deleted = api.delete(path, json={"key": "MODEL"}).json()
    unknown = api.delete(path, json={"key": "NOT_THERE"})

    assert added["MODEL"]["value"] == "gpt2"
    assert added["BATCH"]["value"] == "8" and added["BATCH"]["description"] == "batch size"
    assert list(deleted) == ["BATCH"]
    assert unknown.status_code == 200 and list(unknown.json()) == ["BATCH"]
    assert api.get(path).json()["BATCH"]["value"] == "8"


def test_variables_of_a_space_without_any_are_an_empty_map(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    assert api.get(f"/api/spaces/{SPACE}/variables").json() == {}


@pytest.mark.parametrize(
    "body",
    [{"key": "", "value": "x"}, {"key": "1BAD", "value": "x"}, {"value": "x"}],
    ids=["empty", "digit", "none"],
)
def test_a_bad_key_is_refused(still_hub: HubEmulator, api: Any, body: dict[str, str]) -> None:
    still_hub.add_space(SPACE)

    assert api.post(f"/api/spaces/{SPACE}/variables", json=body).status_code == 400
    assert api.post(f"/api/spaces/{SPACE}/secrets", json=body).status_code == 400


def test_storage_is_requested_upgraded_refused_downgrade_and_deleted(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE)
    path = f"/api/spaces/{SPACE}/storage"

    small = api.post(path, json={"tier": "small"})
    large = api.post(path, json={"tier": "large"})
    down = api.post(path, json={"tier": "medium"})
    deleted = api.delete(path)
    again = api.delete(path)

    assert (small.json()["storage"], large.json()["storage"]) == ("small", "large")
    assert down.status_code == 400 and "delete the storage first" in down.json()["error"]
    assert deleted.status_code == 200 and deleted.json()["storage"] is None
    assert again.status_code == 400


def test_whoami_names_the_owner_its_orgs_and_the_token_role(
    api: Any, make_api: Any, still_hub: HubEmulator
) -> None:
    me = api.get("/api/whoami-v2").json()
    reader = make_api(still_hub.read_token).get("/api/whoami-v2").json()

    assert me["name"] == "demo" and me["type"] == "user"
    assert [org["name"] for org in me["orgs"]] == ["demo-org"]
    assert me["auth"]["type"] == "access_token"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert reader["auth"]["accessToken"]["role"] == "read"
    assert still_hub.write_token not in json.dumps(me)


def test_hardware_catalog_lists_every_built_in_flavor_with_per_minute_prices(make_api: Any) -> None:
    catalog = make_api(None).get("/api/spaces/hardware").json()

    by_name = {entry["name"]: entry for entry in catalog}
    assert set(by_name) == set(KNOWN_FLAVORS)
    assert by_name["a10g-large"]["unitLabel"] == "minute"
    assert by_name["a10g-large"]["unitCostUSD"] == 0.025
    assert by_name["a10g-large"]["unitCostMicroUSD"] == 25000
    assert by_name["a10g-large"]["accelerator"]["quantity"] == "1"
    assert by_name["cpu-basic"]["accelerator"] is None and by_name["cpu-basic"]["unitCostUSD"] == 0


def test_space_info_carries_the_runtime(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="t4-small", private=True)

    info = api.get(f"/api/spaces/{SPACE}").json()

    assert info["id"] == SPACE and info["author"] == "demo" and info["private"] is True
    assert info["runtime"] == api.runtime(SPACE)


def test_logs_are_server_sent_events_of_build_and_run(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, stage="BUILDING", build_seconds=10, start_seconds=5)
    still_hub.advance(20)
    api.runtime(SPACE)

    build = api.get(f"/api/spaces/{SPACE}/logs/build")
    run = api.get(f"/api/spaces/{SPACE}/logs/run")

    assert build.headers["Content-Type"].startswith("text/event-stream")
    events = [
        json.loads(line[len("data: ") :]) for line in build.text.splitlines() if line.startswith("data: ")
    ]
    assert any("BUILDING" in event["data"] for event in events)
    assert all(event["timestamp"].endswith("Z") for event in events)
    assert "RUNNING on cpu-basic" in run.text


def test_duplicate_copies_variables_takes_secrets_from_the_request_and_starts_on_cpu_basic(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(
        SPACE, hardware="a10g-large", variables={"MODEL": "gpt2"}, secrets={"TOKEN": "source"}
    )

    answer = api.post(
        f"/api/spaces/{SPACE}/duplicate",
        json={"repository": "demo/copy", "secrets": [{"key": "API_KEY", "value": "staging"}]},
    )

    assert answer.status_code == 200
    assert answer.json() == {"url": f"{still_hub.url}/spaces/demo/copy"}
    runtime = api.runtime("demo/copy")
    assert (runtime["stage"], runtime["hardware"]["requested"]) == ("BUILDING", "cpu-basic")
    assert api.get("/api/spaces/demo/copy/variables").json()["MODEL"]["value"] == "gpt2"
    assert list(api.get("/api/spaces/demo/copy/secrets").json()) == ["API_KEY"]


def test_duplicate_honours_hardware_sleep_time_visibility_and_storage(
    still_hub: HubEmulator, api: Any, make_api: Any
) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(
        f"/api/spaces/{SPACE}/duplicate",
        json={
            "repository": "demo-org/staging",
            "hardware": "t4-small",
            "sleepTimeSeconds": 3600,
            "visibility": "private",
            "storageTier": "medium",
            "variables": [{"key": "ENV", "value": "staging"}],
        },
    )

    assert answer.status_code == 200
    runtime = api.runtime("demo-org/staging")
    assert runtime["hardware"]["requested"] == "t4-small"
    assert (runtime["gcTimeout"], runtime["storage"]) == (3600, "medium")
    assert api.get("/api/spaces/demo-org/staging").json()["private"] is True
    assert (
        make_api(still_hub.add_token("alice")).get("/api/spaces/demo-org/staging/runtime").status_code == 404
    )
    assert api.get("/api/spaces/demo-org/staging/variables").json()["ENV"]["value"] == "staging"


def test_duplicate_with_the_older_private_flag(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, private=True)

    api.post(f"/api/spaces/{SPACE}/duplicate", json={"repository": "demo/public-copy", "private": False})

    assert api.get("/api/spaces/demo/public-copy").json()["private"] is False


def test_duplicate_onto_an_existing_space_is_a_conflict_with_the_url(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE)
    still_hub.add_space("demo/taken")

    answer = api.post(f"/api/spaces/{SPACE}/duplicate", json={"repository": "demo/taken"})

    assert answer.status_code == 409
    assert answer.json()["url"] == f"{still_hub.url}/spaces/demo/taken"
    assert "already exists" in answer.headers["X-Error-Message"]


def test_duplicate_into_a_namespace_the_token_does_not_own_is_forbidden(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE)

    answer = api.post(f"/api/spaces/{SPACE}/duplicate", json={"repository": "someone-else/copy"})

    assert answer.status_code == 403
    assert "namespace 'someone-else'" in answer.json()["error"]
    assert "someone-else/copy" not in still_hub.hub.spaces


def test_duplicate_needs_a_target(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    assert api.post(f"/api/spaces/{SPACE}/duplicate", json={}).status_code == 400
    assert api.post(f"/api/spaces/{SPACE}/duplicate", json={"repository": "no-slash"}).status_code == 400


def test_wrong_method_on_a_known_path_is_refused(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE)

    assert api.delete(f"/api/spaces/{SPACE}/runtime").status_code == 405
