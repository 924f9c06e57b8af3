"""Each client call against a scripted Hub on 127.0.0.1: exactly what is sent, and what comes back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_spaces.hub import protocol
from airflow_provider_spaces.hub.client import DEFAULT_ENDPOINT, SpacesClient
from airflow_provider_spaces.hub.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from airflow_provider_spaces.hub.models import (
    DuplicateResult,
    SpaceHardware,
    SpaceStage,
    SpaceStorage,
)

SPACE = "demo/app"
RUNTIME_PATH = "/api/spaces/demo/app/runtime"


def only_request(hub: Any) -> Any:
    assert len(hub.requests) == 1, [f"{each.method} {each.path}" for each in hub.requests]
    return hub.requests[0]


class TestRuntime:
    def test_get_space_runtime_sends_an_authenticated_get(
        self, hub: Any, client: SpacesClient, token: str
    ) -> None:
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING", "hardware": {"current": "cpu-basic"}})

        runtime = client.get_space_runtime(SPACE)

        sent = only_request(hub)
        assert (sent.method, sent.path, sent.query, sent.body) == ("GET", RUNTIME_PATH, {}, b"")
        assert sent.headers["Authorization"] == f"Bearer {token}"
        assert sent.headers["User-Agent"].startswith("airflow-provider-spaces/")
        assert sent.headers["Accept"] == "application/json"
        assert runtime.stage is SpaceStage.RUNNING
        assert runtime.url == f"{hub.url}/spaces/demo/app"
        assert runtime.request_id == "req-1"

    def test_a_realistic_runtime_is_parsed_whole(self, hub: Any, client: SpacesClient, runtime: Any) -> None:
        hub.reply(
            "GET",
            RUNTIME_PATH,
            runtime("RUNNING_BUILDING", "cpu-basic", requested="a10g-large", gcTimeout=900),
        )

        parsed = client.get_space_runtime(SPACE)

        assert (parsed.stage, parsed.hardware, parsed.requested_hardware, parsed.sleep_time) == (
            SpaceStage.RUNNING_BUILDING,
            SpaceHardware.CPU_BASIC,
            SpaceHardware.A10G_LARGE,
            900,
        )
        assert parsed.raw["domains"][0]["stage"] == "READY"

    def test_the_smallest_runtime_has_only_a_stage(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("GET", RUNTIME_PATH, {"stage": "BUILDING"})

        parsed = client.get_space_runtime(SPACE)

        assert parsed.stage is SpaceStage.BUILDING
        assert (parsed.hardware, parsed.requested_hardware, parsed.sleep_time, parsed.storage) == (None,) * 4

    def test_a_static_space_reads_running_without_hardware(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET",
            RUNTIME_PATH,
            {"stage": "RUNNING", "hardware": {"current": None, "requested": None}, "storage": None},
        )

        parsed = client.get_space_runtime(SPACE)

        assert parsed.stage is SpaceStage.RUNNING and parsed.hardware is None
        assert parsed.to_dict()["hardware"] is None

    def test_unknown_stages_and_flavors_come_through_as_strings(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET", RUNTIME_PATH, {"stage": "QUEUED", "hardware": {"current": None, "requested": "b200x8"}}
        )

        parsed = client.get_space_runtime(SPACE)

        assert (parsed.stage, parsed.requested_hardware) == ("QUEUED", "b200x8")

    def test_a_success_that_is_not_json_is_an_unexpected_response(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.always("GET", RUNTIME_PATH, b"<html>login</html>", status=200)

        with pytest.raises(UnexpectedResponseError, match="HTTP 200 with a body that is not JSON"):
            client.get_space_runtime(SPACE)

    def test_a_redirect_from_a_renamed_space_is_followed_with_the_token(
        self, hub: Any, client: SpacesClient, token: str
    ) -> None:
        hub.reply("GET", RUNTIME_PATH, status=307, headers={"Location": "/api/spaces/demo/renamed/runtime"})
        hub.reply("GET", "/api/spaces/demo/renamed/runtime", {"stage": "RUNNING"})

        assert client.get_space_runtime(SPACE).stage is SpaceStage.RUNNING
        assert [each.path for each in hub.requests] == [RUNTIME_PATH, "/api/spaces/demo/renamed/runtime"]
        assert hub.requests[1].headers["Authorization"] == f"Bearer {token}"

    def test_a_leftover_redirect_is_an_unexpected_response(self, hub: Any, client: SpacesClient) -> None:
        hub.always("GET", RUNTIME_PATH, status=300)

        with pytest.raises(
            UnexpectedResponseError, match="HTTP 300 where an answer or an error was expected"
        ):
            client.get_space_runtime(SPACE)

    def test_a_runtime_without_stage_is_an_unexpected_response(self, hub: Any, client: SpacesClient) -> None:
        hub.always("GET", RUNTIME_PATH, {"hardware": {"current": "cpu-basic"}})

        with pytest.raises(UnexpectedResponseError, match="has no stage"):
            client.get_space_runtime(SPACE)


class TestSettings:
    def test_request_space_hardware_posts_the_flavor(
        self, hub: Any, client: SpacesClient, runtime: Any
    ) -> None:
        hub.reply(
            "POST", "/api/spaces/demo/app/hardware", runtime("RUNNING", "cpu-basic", requested="a10g-large")
        )

        parsed = client.request_space_hardware(SPACE, "a10g-large")

        sent = only_request(hub)
        assert sent.json == {"flavor": "a10g-large"}
        assert sent.headers["Content-Type"] == "application/json"
        assert (parsed.hardware, parsed.requested_hardware) == ("cpu-basic", "a10g-large")

    def test_request_space_hardware_with_a_sleep_time_and_an_enum(
        self, hub: Any, client: SpacesClient, runtime: Any
    ) -> None:
        hub.reply(
            "POST", "/api/spaces/demo/app/hardware", runtime("RUNNING", requested="t4-small", gcTimeout=3600)
        )

        client.request_space_hardware(SPACE, SpaceHardware.T4_SMALL, sleep_time=3600)

        assert only_request(hub).json == {"flavor": "t4-small", "sleepTimeSeconds": 3600}

    def test_a_refused_unknown_flavor_suggests_the_closest_known_one(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", "/api/spaces/demo/app/hardware", {"error": "Invalid flavor"}, status=400)

        with pytest.raises(BadRequestError, match="Invalid flavor .* did you mean 'a10g-large'"):
            client.request_space_hardware(SPACE, "a10g-larg")

    def test_set_space_sleep_time_posts_seconds(self, hub: Any, client: SpacesClient, runtime: Any) -> None:
        hub.reply("POST", "/api/spaces/demo/app/sleeptime", runtime("RUNNING", "t4-small", gcTimeout=-1))

        parsed = client.set_space_sleep_time(SPACE, -1)

        assert only_request(hub).json == {"seconds": -1}
        assert parsed.sleep_time == -1

    def test_pause_space_posts_without_a_body(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "POST", "/api/spaces/demo/app/pause", {"stage": "PAUSED", "hardware": {"requested": "t4-small"}}
        )

        parsed = client.pause_space(SPACE)

        sent = only_request(hub)
        assert (sent.method, sent.body, sent.query) == ("POST", b"", {})
        assert parsed.stage is SpaceStage.PAUSED

    @pytest.mark.parametrize(
        ("factory_reboot", "query"),
        [(False, {}), (True, {"factory": ["true"]})],
        ids=["restart", "factory-reboot"],
    )
    def test_restart_space_posts_with_the_factory_flag_only_when_asked(
        self, hub: Any, client: SpacesClient, factory_reboot: bool, query: dict[str, list[str]]
    ) -> None:
        hub.reply("POST", "/api/spaces/demo/app/restart", {"stage": "BUILDING"})

        parsed = client.restart_space(SPACE, factory_reboot=factory_reboot)

        sent = only_request(hub)
        assert (sent.query, sent.body) == (query, b"")
        assert parsed.stage is SpaceStage.BUILDING

    @pytest.mark.parametrize("enabled", [True, False], ids=["enable", "disable"])
    def test_dev_mode_posts_enabled(self, hub: Any, client: SpacesClient, enabled: bool) -> None:
        hub.reply("POST", "/api/spaces/demo/app/dev-mode", {"stage": "RUNNING", "devMode": enabled})

        call = client.enable_space_dev_mode if enabled else client.disable_space_dev_mode
        parsed = call(SPACE)

        assert only_request(hub).json == {"enabled": enabled}
        assert parsed.dev_mode is enabled

    def test_request_space_storage_posts_the_tier(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", "/api/spaces/demo/app/storage", {"stage": "RUNNING", "storage": "medium"})

        parsed = client.request_space_storage(SPACE, SpaceStorage.MEDIUM)

        assert only_request(hub).json == {"tier": "medium"}
        assert parsed.storage is SpaceStorage.MEDIUM

    def test_delete_space_storage_sends_a_delete(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("DELETE", "/api/spaces/demo/app/storage", {"stage": "RUNNING", "storage": None})

        parsed = client.delete_space_storage(SPACE)

        sent = only_request(hub)
        assert (sent.method, sent.body) == ("DELETE", b"")
        assert parsed.storage is None


class TestSecretsAndVariables:
    def test_add_space_secret_posts_key_value_and_description(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", "/api/spaces/demo/app/secrets", {})

        result = client.add_space_secret(SPACE, "API_KEY", "v4lue", description="for the API")

        assert result is None
        assert only_request(hub).json == {"key": "API_KEY", "value": "v4lue", "description": "for the API"}

    def test_add_space_secret_without_description_leaves_it_out(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", "/api/spaces/demo/app/secrets", None)

        client.add_space_secret(SPACE, "API_KEY", "")

        assert only_request(hub).json == {"key": "API_KEY", "value": ""}

    def test_delete_space_secret_sends_the_key_in_a_delete_body(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("DELETE", "/api/spaces/demo/app/secrets", {})

        client.delete_space_secret(SPACE, "API_KEY")

        sent = only_request(hub)
        assert (sent.method, sent.json) == ("DELETE", {"key": "API_KEY"})

    def test_get_space_secrets_returns_metadata_only(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET",
            "/api/spaces/demo/app/secrets",
            {"API_KEY": {"description": "key", "updatedAt": "2026-01-02T03:04:05Z"}, "OTHER": {}},
        )

        secrets = client.get_space_secrets(SPACE)

        assert set(secrets) == {"API_KEY", "OTHER"}
        assert secrets["API_KEY"].description == "key"
        assert secrets["API_KEY"].updated_at is not None and secrets["API_KEY"].updated_at.year == 2026

    def test_get_space_variables_parses_the_map(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET", "/api/spaces/demo/app/variables", {"MODEL": {"value": "org/m", "description": "which"}}
        )

        variables = client.get_space_variables(SPACE)

        assert (variables["MODEL"].value, variables["MODEL"].description) == ("org/m", "which")

    def test_no_variables_is_an_empty_map(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("GET", "/api/spaces/demo/app/variables", {})

        assert client.get_space_variables(SPACE) == {}

    def test_add_space_variable_returns_all_variables_after_the_change(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", "/api/spaces/demo/app/variables", {"A": {"value": "1"}, "B": {"value": "2"}})

        variables = client.add_space_variable(SPACE, "B", "2", description="second")

        assert only_request(hub).json == {"key": "B", "value": "2", "description": "second"}
        assert sorted(variables) == ["A", "B"]

    def test_delete_space_variable_returns_what_is_left(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("DELETE", "/api/spaces/demo/app/variables", {"A": {"value": "1"}})

        variables = client.delete_space_variable(SPACE, "B")

        sent = only_request(hub)
        assert (sent.method, sent.json) == ("DELETE", {"key": "B"})
        assert list(variables) == ["A"]


DUPLICATE_PATH = "/api/spaces/demo/app/duplicate"


class TestDuplicate:
    def test_a_bare_duplicate_sends_only_the_target(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", DUPLICATE_PATH, {"url": "https://hub.example/spaces/demo/copy"})

        result = client.duplicate_space(SPACE, "demo/copy")

        assert only_request(hub).json == {"repository": "demo/copy"}
        assert result == DuplicateResult(
            url="https://hub.example/spaces/demo/copy", space_id="demo/copy", created=True
        )

    def test_every_option_is_sent_under_the_hubs_name(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", DUPLICATE_PATH, {"url": "https://hub.example/spaces/staging/app"})

        client.duplicate_space(
            SPACE,
            "staging/app",
            visibility="private",
            hardware="t4-small",
            storage="small",
            sleep_time=600,
            secrets={"API_KEY": "s3cret"},
            variables=[{"key": "STAGE", "value": "staging", "description": "where"}],
        )

        assert only_request(hub).json == {
            "repository": "staging/app",
            "visibility": "private",
            "hardware": "t4-small",
            "storageTier": "small",
            "sleepTimeSeconds": 600,
            "secrets": [{"key": "API_KEY", "value": "s3cret"}],
            "variables": [{"key": "STAGE", "value": "staging", "description": "where"}],
        }

    @pytest.mark.parametrize(
        ("private", "visibility"), [(True, "private"), (False, "public")], ids=["private", "public"]
    )
    def test_the_older_private_flag_becomes_a_visibility(
        self, hub: Any, client: SpacesClient, private: bool, visibility: str
    ) -> None:
        hub.reply("POST", DUPLICATE_PATH, {"url": "https://hub.example/spaces/demo/copy"})

        client.duplicate_space(SPACE, "demo/copy", private=private)

        assert only_request(hub).json == {"repository": "demo/copy", "visibility": visibility}

    def test_an_existing_target_is_a_conflict(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "POST",
            DUPLICATE_PATH,
            {"error": "already exists", "url": "https://hub.example/spaces/demo/copy"},
            status=409,
        )

        with pytest.raises(
            ConflictError, match="HTTP 409 Conflict: already exists .* pass exist_ok=True"
        ) as caught:
            client.duplicate_space(SPACE, "demo/copy")

        assert caught.value.url == "https://hub.example/spaces/demo/copy"
        assert len(hub.requests) == 1

    def test_exist_ok_returns_the_existing_target_as_not_created(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply(
            "POST",
            DUPLICATE_PATH,
            {"error": "exists", "url": "https://hub.example/spaces/demo/copy"},
            status=409,
        )

        result = client.duplicate_space(SPACE, "demo/copy", exist_ok=True)

        assert result == DuplicateResult(
            url="https://hub.example/spaces/demo/copy", space_id="demo/copy", created=False
        )

    def test_exist_ok_without_a_url_in_the_answer_builds_it(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", DUPLICATE_PATH, {"error": "exists"}, status=409)

        result = client.duplicate_space(SPACE, "demo/copy", exist_ok=True)

        assert result.url == f"{hub.url}/spaces/demo/copy"


class TestAccount:
    def test_list_space_hardware_reads_the_catalog(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET",
            "/api/spaces/hardware",
            [
                {"name": "cpu-basic", "prettyName": "CPU basic", "unitCostUSD": 0, "unitLabel": "minute"},
                {
                    "name": "t4-small",
                    "unitCostUSD": 0.006667,
                    "unitLabel": "minute",
                    "accelerator": {"quantity": 1},
                },
                {"prettyName": "no name, skipped"},
            ],
        )

        catalog = client.list_space_hardware()

        assert [info.name for info in catalog] == ["cpu-basic", "t4-small"]
        assert catalog[1].usd_per_hour == pytest.approx(0.4, abs=0.001)
        assert client.list_spaces_hardware.__func__ is SpacesClient.list_space_hardware  # type: ignore[attr-defined]

    def test_whoami_reads_the_tokens_owner_and_role(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET",
            "/api/whoami-v2",
            {
                "type": "user",
                "name": "demo",
                "auth": {"accessToken": {"role": "write"}},
                "orgs": [{"name": "acme"}],
            },
        )

        who = client.whoami()

        assert (who.name, who.token_role, who.orgs) == ("demo", "write", ("acme",))
        assert only_request(hub).path == "/api/whoami-v2"

    def test_space_info_includes_the_runtime(self, hub: Any, client: SpacesClient) -> None:
        hub.reply(
            "GET",
            "/api/spaces/demo/app",
            {"id": "demo/app", "private": False, "runtime": {"stage": "SLEEPING"}},
        )

        info = client.space_info(SPACE)

        assert info.runtime is not None and info.runtime.stage is SpaceStage.SLEEPING
        assert info.runtime.request_id == "req-1"


class TestErrorsThroughTheClient:
    @pytest.mark.parametrize(
        ("status", "kind", "words"),
        [
            (401, AuthenticationError, "lacks write access to this Space's settings"),
            (403, PermissionDeniedError, "payment method"),
            (404, NotFoundError, "Check the Space id"),
        ],
        ids=["401", "403", "404"],
    )
    def test_a_hub_refusal_names_the_space_action_status_request_id_and_next_step(
        self, hub: Any, client: SpacesClient, status: int, kind: type[Exception], words: str
    ) -> None:
        hub.reply(
            "POST",
            "/api/spaces/demo/app/pause",
            {"error": "nope"},
            status=status,
            headers={"X-Error-Code": "Denied"},
        )

        with pytest.raises(
            kind,
            match=rf"Could not pause Space demo/app: HTTP {status} .*\(Denied\): nope \[request id req-1\]\. .*{words}",
        ):
            client.pause_space(SPACE)

    def test_a_token_echoed_by_the_hub_is_masked_in_the_error(
        self, hub: Any, client: SpacesClient, token: str
    ) -> None:
        hub.reply("GET", RUNTIME_PATH, {"error": f"token {token} is not valid"}, status=401)

        with pytest.raises(AuthenticationError) as caught:
            client.get_space_runtime(SPACE)

        assert token not in str(caught.value)
        assert "token *** is not valid" in str(caught.value)

    def test_a_secret_value_echoed_by_the_hub_is_masked_in_the_error(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", "/api/spaces/demo/app/secrets", {"error": "value 'pa55word' too short"}, status=400)

        with pytest.raises(BadRequestError) as caught:
            client.add_space_secret(SPACE, "PASSWORD", "pa55word")

        assert "pa55word" not in str(caught.value)

    def test_secret_values_of_a_duplicate_are_masked_in_its_errors(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", DUPLICATE_PATH, {"error": "secret hunter2 rejected"}, status=400)

        with pytest.raises(BadRequestError) as caught:
            client.duplicate_space(SPACE, "demo/copy", secrets=[{"key": "PASSWORD", "value": "hunter2"}])

        assert "hunter2" not in str(caught.value)

    def test_a_described_call_never_shows_its_body(self) -> None:
        call = protocol.add_secret_call(SPACE, "PASSWORD", "hunter2")

        assert repr(call) == "HubCall(POST /api/spaces/demo/app/secrets)"

    def test_an_anonymous_401_says_no_token_was_sent(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        anonymous = make_client(token=None)
        hub.reply("GET", RUNTIME_PATH, {"error": "Unauthorized"}, status=401)

        with pytest.raises(AuthenticationError, match="No token was sent"):
            anonymous.get_space_runtime(SPACE)

        assert "Authorization" not in only_request(hub).headers


def _calls_with_bad_input() -> list[tuple[str, Callable[[SpacesClient], Any], str]]:
    return [
        ("space_id", lambda c: c.get_space_runtime("not-a-space-id"), "space_id"),
        ("space_id-traversal", lambda c: c.pause_space("demo/../admin"), "space_id"),
        ("hardware-empty", lambda c: c.request_space_hardware(SPACE, ""), "hardware"),
        ("hardware-sleep", lambda c: c.request_space_hardware(SPACE, "t4-small", sleep_time=0), "sleep_time"),
        ("sleep-negative", lambda c: c.set_space_sleep_time(SPACE, -5), "sleep_time"),
        ("sleep-bool", lambda c: c.set_space_sleep_time(SPACE, True), "sleep_time"),
        ("secret-key-empty", lambda c: c.add_space_secret(SPACE, "", "v"), "key"),
        ("secret-key-dash", lambda c: c.add_space_secret(SPACE, "MY-KEY", "v"), "key"),
        ("secret-value-type", lambda c: c.add_space_secret(SPACE, "KEY", 42), "value"),
        ("delete-secret-key", lambda c: c.delete_space_secret(SPACE, ""), "key"),
        ("variable-key", lambda c: c.add_space_variable(SPACE, "1ST", "v"), "key"),
        ("delete-variable-key", lambda c: c.delete_space_variable(SPACE, "A B"), "key"),
        ("storage", lambda c: c.request_space_storage(SPACE, ""), "storage"),
        ("duplicate-target", lambda c: c.duplicate_space(SPACE, "copy"), "to_id"),
        ("duplicate-source", lambda c: c.duplicate_space("app", "demo/copy"), "from_id"),
        ("duplicate-onto-itself", lambda c: c.duplicate_space(SPACE, SPACE), "to_id"),
        (
            "duplicate-visibility",
            lambda c: c.duplicate_space(SPACE, "demo/copy", visibility="hidden"),
            "visibility",
        ),
        (
            "duplicate-contradiction",
            lambda c: c.duplicate_space(SPACE, "demo/copy", visibility="public", private=True),
            "private",
        ),
        (
            "duplicate-secret-key",
            lambda c: c.duplicate_space(SPACE, "demo/copy", secrets={"": "v"}),
            "secrets key",
        ),
        (
            "duplicate-variable-shape",
            lambda c: c.duplicate_space(SPACE, "demo/copy", variables=[{"key": "A"}]),
            "variables",
        ),
        ("duplicate-hardware", lambda c: c.duplicate_space(SPACE, "demo/copy", hardware=" "), "hardware"),
        ("duplicate-sleep", lambda c: c.duplicate_space(SPACE, "demo/copy", sleep_time=-3), "sleep_time"),
    ]


BAD_INPUT = _calls_with_bad_input()


@pytest.mark.parametrize(
    ("call", "argument"), [(c, a) for _, c, a in BAD_INPUT], ids=[i for i, _, _ in BAD_INPUT]
)
def test_bad_input_is_refused_before_any_request(
    hub: Any, client: SpacesClient, call: Callable[[SpacesClient], Any], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid {argument}:") as caught:
        call(client)

    assert caught.value.argument == argument
    assert hub.requests == []


class TestConstruction:
    def test_the_endpoint_comes_from_hf_endpoint_and_loses_its_trailing_slash(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")

        assert SpacesClient().endpoint == "http://127.0.0.1:9"
        assert SpacesClient(endpoint="http://127.0.0.1:8/hub//").endpoint == "http://127.0.0.1:8/hub"

    def test_without_hf_endpoint_the_default_is_the_public_hub(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)

        # Only built, never used: nothing is sent anywhere.
        assert SpacesClient().endpoint == DEFAULT_ENDPOINT == "https://huggingface.co"

    @pytest.mark.parametrize(
        ("options", "argument"),
        [
            ({"endpoint": "huggingface.co"}, "endpoint"),
            ({"endpoint": "ftp://127.0.0.1"}, "endpoint"),
            ({"read_timeout": 0}, "read_timeout"),
            ({"connect_timeout": -1}, "connect_timeout"),
            ({"read_timeout": None}, "read_timeout"),
            ({"read_timeout": 1e308}, "read_timeout"),
            ({"connect_timeout": float("nan")}, "connect_timeout"),
        ],
        ids=[
            "no-scheme",
            "ftp",
            "zero-read-timeout",
            "negative-connect-timeout",
            "no-read-timeout",
            "read-timeout-beyond-a-day",
            "connect-timeout-not-a-number",
        ],
    )
    def test_bad_settings_are_refused_naming_them(self, options: dict[str, Any], argument: str) -> None:
        options.setdefault("endpoint", "http://127.0.0.1:9")
        with pytest.raises(InvalidArgumentError, match=f"^Invalid {argument}:"):
            SpacesClient(**options)

    def test_repr_never_shows_the_token(self, token: str) -> None:
        client = SpacesClient(endpoint="http://127.0.0.1:9", token=token)

        assert token not in repr(client)
        assert repr(client) == "SpacesClient(endpoint='http://127.0.0.1:9', authenticated=True)"
        assert token not in str(vars(client).get("timeout"))

    def test_a_blank_token_means_anonymous(self) -> None:
        assert not SpacesClient(endpoint="http://127.0.0.1:9", token="  \n").authenticated

    def test_the_token_is_stripped_before_use(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"})

        make_client(token="  hf_padded\n").get_space_runtime(SPACE)

        assert only_request(hub).headers["Authorization"] == "Bearer hf_padded"

    def test_a_custom_user_agent_is_sent(self, hub: Any, make_client: Callable[..., SpacesClient]) -> None:
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"})

        make_client(user_agent="airflow-provider-spaces/0.1.0 airflow/3.3.2").get_space_runtime(SPACE)

        assert only_request(hub).headers["User-Agent"] == "airflow-provider-spaces/0.1.0 airflow/3.3.2"

    def test_a_session_handed_in_is_used_and_left_open(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        session = requests.Session()
        session.headers["X-Team"] = "ml"
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"}, times=2)

        with make_client(session=session) as spaces:
            spaces.get_space_runtime(SPACE)

        assert hub.requests[0].headers["X-Team"] == "ml"
        assert session.get(f"{hub.url}{RUNTIME_PATH}", timeout=2).status_code == 200  # still usable
        session.close()

    def test_a_proxy_from_the_environment_is_used(
        self, hub: Any, make_client: Callable[..., SpacesClient], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", hub.url)  # the scripted Hub plays the proxy
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"})

        # Nothing listens on port 9: only a request sent through the proxy gets an answer.
        make_client(endpoint="http://127.0.0.1:9").get_space_runtime(SPACE)

        assert only_request(hub).headers["Host"] == "127.0.0.1:9"

    def test_the_latest_rate_limit_state_is_exposed(self, hub: Any, client: SpacesClient) -> None:
        headers = {"RateLimit": '"api";r=998;t=250', "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'}
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"}, headers=headers)
        hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"})

        assert client.rate_limit is None
        client.get_space_runtime(SPACE)
        state = client.rate_limit
        client.get_space_runtime(SPACE)  # an answer without the headers keeps the last known state

        assert state is not None and (state.remaining, state.quota, state.window_seconds) == (998, 1000, 300)
        assert client.rate_limit is state


def test_requests_are_logged_at_debug_by_method_and_path_without_token_or_secret(
    hub: Any, client: SpacesClient, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub.reply("POST", "/api/spaces/demo/app/secrets", {})
    hub.reply("GET", RUNTIME_PATH, {"error": "boom"}, status=503)
    hub.reply("GET", RUNTIME_PATH, {"stage": "RUNNING"})

    with caplog.at_level(logging.DEBUG, logger="airflow_provider_spaces"):
        client.add_space_secret(SPACE, "API_KEY", "super-secret-value")
        client.get_space_runtime(SPACE)

    messages = [record.getMessage() for record in caplog.records]
    assert "POST /api/spaces/demo/app/secrets" in messages
    assert "GET /api/spaces/demo/app/runtime -> 200 (request id req-3)" in messages
    assert token not in caplog.text
    assert "super-secret-value" not in caplog.text
    assert "Bearer" not in caplog.text
