"""SpacesHook: which connection it reads, its fallback to the Hugging Face environment, the client it
builds, its connection test, and the token staying out of every log line, repr and message."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from airflow.models.connection import Connection as StoredConnection
from airflow.sdk import DAG, BaseOperator, task
from airflow.sdk._shared.secrets_masker import redact
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spaces import __version__
from airflow_provider_spaces._compat import AIRFLOW_VERSION, AirflowNotFoundException
from airflow_provider_spaces.hooks.connection import InvalidConnectionError
from airflow_provider_spaces.hooks.spaces import USER_AGENT, SpacesHook
from airflow_provider_spaces.hub.client import SpacesClient

TOKEN = "hf_hook_test_token_8d2e71c4"
WHOAMI = "/api/whoami-v2"
ME = {"type": "user", "name": "demo-user", "auth": {"accessToken": {"role": "write"}}, "orgs": []}


@pytest.fixture
def hub_connection(airflow_connection, small_hub):
    """Define connection ``spaces_test`` pointing at the small Hub, with a token."""
    return airflow_connection("spaces_test", host=small_hub.url, password=TOKEN, extra={"read_timeout": 5})


def test_creating_the_hook_reads_no_connection():
    # The lookup would fail for a connection that does not exist; creating the hook must not try.
    hook = SpacesHook("nowhere_defined")

    assert hook.spaces_conn_id == "nowhere_defined"


def test_hook_reads_the_named_connection(hub_connection, small_hub):
    settings = SpacesHook(hub_connection).get_settings()

    assert settings.endpoint == small_hub.url
    assert settings.token == TOKEN
    assert settings.read_timeout == 5.0
    assert settings.source == "connection 'spaces_test'"


def test_named_connection_that_does_not_exist_is_an_error_naming_it():
    hook = SpacesHook("no_such_connection")

    with pytest.raises(
        AirflowNotFoundException, match=r"Connection 'no_such_connection' is not defined\. Create it"
    ):
        hook.get_settings()


def test_missing_default_connection_falls_back_to_hf_token_and_hf_endpoint(monkeypatch, airflow_logs):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:7000")

    settings = SpacesHook().get_settings()

    assert (settings.endpoint, settings.token) == ("http://127.0.0.1:7000", TOKEN)
    assert settings.source.startswith("the Hugging Face environment")
    assert (
        "Connection 'huggingface_default' is not defined; using the Hugging Face environment"
        in airflow_logs.text
    )
    assert TOKEN not in airflow_logs.text


def test_missing_default_connection_falls_back_to_the_token_file(monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(token_file))

    assert SpacesHook().get_settings().token == TOKEN


def test_missing_default_connection_without_any_token_calls_anonymously():
    settings = SpacesHook().get_settings()

    assert settings.token is None
    assert settings.endpoint == "http://127.0.0.1:9"  # the suite's guard value of HF_ENDPOINT


def test_existing_default_connection_wins_over_the_environment(monkeypatch, airflow_connection):
    monkeypatch.setenv("HF_TOKEN", "hf_environment_token_not_wanted")
    airflow_connection("huggingface_default", host="http://127.0.0.1:7001", password=TOKEN)

    settings = SpacesHook().get_settings()

    assert (settings.endpoint, settings.token) == ("http://127.0.0.1:7001", TOKEN)


@pytest.mark.parametrize("source", ["connection", "environment"], ids=["from-connection", "from-environment"])
def test_token_is_registered_with_the_secrets_masker_once_read(source, monkeypatch, airflow_connection):
    token = f"hf_masked_{uuid.uuid4().hex}"
    if source == "connection":
        airflow_connection("masked", host="http://127.0.0.1:7002", password=token)
        hook = SpacesHook("masked")
    else:
        monkeypatch.setenv("HF_TOKEN", token)
        hook = SpacesHook()
    assert redact(f"sent {token}") == f"sent {token}"

    hook.get_settings()

    assert redact(f"sent {token}") == "sent ***"


def test_token_stays_out_of_reprs(hub_connection):
    hook = SpacesHook(hub_connection)
    client = hook.get_client()

    assert TOKEN not in repr(hook)
    assert TOKEN not in repr(hook.get_settings())
    assert TOKEN not in repr(client)


def test_invalid_connection_is_refused_when_first_used(airflow_connection):
    airflow_connection(
        "bad_extra", host="http://127.0.0.1:7003", password=TOKEN, extra={"read_timeout": "soon"}
    )
    hook = SpacesHook("bad_extra")

    with pytest.raises(
        InvalidConnectionError, match=r"Invalid connection 'bad_extra' extra 'read_timeout'"
    ) as raised:
        hook.get_client()

    assert TOKEN not in str(raised.value)


def test_client_gets_the_connection_settings_and_is_built_once(airflow_connection):
    airflow_connection(
        "tuned",
        host="http://127.0.0.1:7004",
        password=TOKEN,
        extra={"connect_timeout": 3, "read_timeout": 7, "max_retries": 1, "max_retry_wait": 15},
    )
    hook = SpacesHook("tuned")

    client = hook.get_client()

    assert client is hook.get_client() is hook.get_conn()
    assert client.endpoint == "http://127.0.0.1:7004"
    assert client.authenticated
    assert client.timeout == (3.0, 7.0)
    assert (client.retry.max_attempts, client.retry.total_timeout) == (2, 15.0)
    assert (
        client.user_agent == USER_AGENT == f"airflow-provider-spaces/{__version__} airflow/{AIRFLOW_VERSION}"
    )


def test_client_keeps_its_own_defaults_for_unset_extras(airflow_connection):
    airflow_connection("plain", host="http://127.0.0.1:7005", password=TOKEN)

    client = SpacesHook("plain").get_client()
    default = SpacesClient(endpoint="http://127.0.0.1:7005")

    assert client.timeout == default.timeout
    assert client.retry == default.retry


def test_requests_carry_the_connection_token_and_our_user_agent(hub_connection, small_hub):
    small_hub.answer("GET", WHOAMI, body=ME)

    SpacesHook(hub_connection).whoami()

    (request,) = small_hub.seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT


@pytest.fixture
def emulated_connection(airflow_connection, hub_emulator):
    """Return a function defining a connection to the emulated Hub with the given token."""

    def define(token: str, conn_id: str = "emulated") -> str:
        return airflow_connection(conn_id, host=hub_emulator.url, password=token)

    return define


@pytest.mark.parametrize("role", ["write", "read"], ids=["write-token", "read-token"])
def test_connection_test_succeeds_with_the_account_and_token_role(role, emulated_connection, hub_emulator):
    token = hub_emulator.write_token if role == "write" else hub_emulator.read_token

    result = SpacesHook(emulated_connection(token)).test_connection()

    assert result == (True, f"Connected to {hub_emulator.url} as demo (token role: {role})")


def test_connection_test_fails_with_the_hubs_reason_for_a_bad_token(
    emulated_connection, hub_emulator, airflow_logs
):
    ok, message = SpacesHook(emulated_connection(TOKEN)).test_connection()

    assert not ok
    assert message.startswith("AuthenticationError: Could not read the token's identity: ")
    assert "Invalid credentials in Authorization header" in message
    assert TOKEN not in message
    assert TOKEN not in airflow_logs.text
    assert [(entry["path"], entry["status"]) for entry in hub_emulator.request_log()] == [(WHOAMI, 401)]


def test_connection_test_never_shows_a_token_the_hub_echoes(hub_connection, small_hub, airflow_logs):
    small_hub.answer(
        "GET", WHOAMI, status=401, body={"error": f"Invalid credentials in Authorization: {TOKEN}"}
    )

    ok, message = SpacesHook(hub_connection).test_connection()

    assert not ok
    assert "Invalid credentials" in message
    assert TOKEN not in message
    assert TOKEN not in airflow_logs.text


def test_connection_test_without_a_token_says_what_is_missing(airflow_connection, small_hub):
    airflow_connection("tokenless", host=small_hub.url)

    ok, message = SpacesHook("tokenless").test_connection()

    assert (ok, message) == (
        False,
        "No token: put a Hugging Face access token in the password of connection 'tokenless'.",
    )
    assert small_hub.seen == []


def test_connection_test_of_a_missing_connection_says_it_is_not_defined():
    ok, message = SpacesHook("no_such_connection").test_connection()

    assert not ok
    assert "Connection 'no_such_connection' is not defined" in message


def test_airflow_connection_test_button_reaches_the_hook(small_hub, monkeypatch):
    """Do what the API server does for "Test": an unsaved connection, exported as a URI."""
    small_hub.answer("GET", WHOAMI, body=ME)
    conn_id = f"transient{uuid.uuid4().hex[:8]}"
    conn = StoredConnection(
        conn_id=conn_id, conn_type="huggingface_spaces", host=small_hub.url, password=TOKEN
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.get_uri())

    status, message = conn.test_connection()

    assert (status, message) == (True, f"Connected to {small_hub.url} as demo-user (token role: write)")


def test_async_settings_match_the_sync_ones(hub_connection, small_hub):
    settings = asyncio.run(SpacesHook(hub_connection).aget_settings())

    assert settings == SpacesHook(hub_connection).get_settings()
    assert (settings.endpoint, settings.token) == (small_hub.url, TOKEN)


def test_async_settings_fall_back_to_the_environment_and_mask_the_token(monkeypatch):
    token = f"hf_async_{uuid.uuid4().hex}"
    monkeypatch.setenv("HF_TOKEN", token)

    settings = asyncio.run(SpacesHook().aget_settings())

    assert settings.token == token
    assert redact(token) == "***"


def test_async_settings_of_a_missing_named_connection_is_an_error_naming_it():
    with pytest.raises(AirflowNotFoundException, match=r"Connection 'gone' is not defined"):
        asyncio.run(SpacesHook("gone").aget_settings())


@pytest.mark.parametrize(
    "name",
    [
        "get_space_runtime",
        "request_space_hardware",
        "set_space_sleep_time",
        "pause_space",
        "restart_space",
        "add_space_secret",
        "delete_space_secret",
        "get_space_secrets",
        "get_space_variables",
        "add_space_variable",
        "delete_space_variable",
        "duplicate_space",
        "list_space_hardware",
        "whoami",
    ],
)
def test_hook_calls_take_the_clients_arguments(name):
    assert inspect.signature(getattr(SpacesHook, name)) == inspect.signature(getattr(SpacesClient, name))


def test_clients_of_one_token_share_one_budget_planned_from_the_connection(airflow_connection):
    extra = {"rate_limit_quota": 2500, "rate_limit_window": 300}
    airflow_connection("pro_one", host="http://127.0.0.1:7006", password=TOKEN, extra=extra)
    airflow_connection("pro_two", host="http://127.0.0.1:7006", password=TOKEN, extra=extra)
    airflow_connection("other_token", host="http://127.0.0.1:7006", password=TOKEN + "2")

    first, second = SpacesHook("pro_one").get_client(), SpacesHook("pro_two").get_client()

    assert first.budget is second.budget
    assert first.budget is not None
    assert (first.budget.quota, first.budget.window_seconds) == (2500, 300)
    assert SpacesHook("other_token").get_client().budget is not first.budget


def test_the_async_client_reads_a_space_with_the_connections_settings(emulated_connection, hub_emulator):
    hub_emulator.add_space("demo/app", hardware="t4-small")
    hook = SpacesHook(emulated_connection(hub_emulator.write_token))

    async def read() -> Any:
        async with hook.aclient() as client:
            return client.user_agent, await client.get_space_runtime("demo/app", paced=True)

    user_agent, runtime = asyncio.run(read())

    assert (runtime.stage, runtime.hardware) == ("RUNNING", "t4-small")
    assert user_agent == USER_AGENT
    assert hub_emulator.request_log("demo/app")[-1]["status"] == 200


def test_hook_call_changes_the_space_on_the_hub(emulated_connection, hub_emulator):
    hub_emulator.add_space("demo/app", hardware="t4-small")

    runtime = SpacesHook(emulated_connection(hub_emulator.write_token)).pause_space("demo/app")

    assert (runtime.space_id, runtime.stage, runtime.requested_hardware) == ("demo/app", "PAUSED", "t4-small")
    assert hub_emulator.runtime("demo/app")["stage"] == "PAUSED"


def test_secret_values_are_masked_before_they_are_sent(hub_connection, small_hub):
    small_hub.answer("POST", "/api/spaces/demo/app/secrets", body={})
    small_hub.answer(
        "POST", "/api/spaces/demo/app/duplicate", body={"url": f"{small_hub.url}/spaces/demo/copy"}
    )
    value, copied = f"secret-{uuid.uuid4().hex}", f"copied-{uuid.uuid4().hex}"
    hook = SpacesHook(hub_connection)

    hook.add_space_secret("demo/app", "API_KEY", value)
    hook.duplicate_space("demo/app", "demo/copy", secrets={"API_KEY": copied})

    assert redact(f"{value} {copied}") == "*** ***"
    assert small_hub.seen[0].body == {"key": "API_KEY", "value": value}


def test_importing_the_hook_loads_no_http_stack_beyond_what_airflow_sdk_loads():
    code = (
        "import sys, airflow.sdk; before = set(sys.modules); "
        "import airflow_provider_spaces.hooks.spaces; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('requests', 'fastapi', 'uvicorn', 'starlette', 'httpx') "
        "or m.startswith(('airflow_provider_spaces.emulator', 'airflow_provider_spaces.hub.client'))))"
    )

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip().splitlines()[-1] == "[]"


class SettingsTrigger(BaseTrigger):
    """Read the hook's settings the way a trigger does, and report what it found."""

    def __init__(self, spaces_conn_id: str) -> None:
        super().__init__()
        self.spaces_conn_id = spaces_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"spaces_conn_id": self.spaces_conn_id}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        settings = await SpacesHook(self.spaces_conn_id).aget_settings()
        yield TriggerEvent({"endpoint": settings.endpoint, "has_token": settings.token == TOKEN})


class SettingsInTriggerOperator(BaseOperator):
    def __init__(self, *, spaces_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spaces_conn_id = spaces_conn_id

    def execute(self, context: Any) -> None:
        self.defer(trigger=SettingsTrigger(self.spaces_conn_id), method_name="done")

    def done(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return event


def test_task_and_trigger_read_the_connection_through_the_hook(run_dag, hub_connection, small_hub):
    with DAG("hook_settings", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def in_task() -> dict[str, Any]:
            settings = SpacesHook(hub_connection).get_settings()
            return {"endpoint": settings.endpoint, "has_token": settings.token == TOKEN}

        in_task()
        SettingsInTriggerOperator(task_id="in_trigger", spaces_conn_id=hub_connection)

    result = run_dag(dag)

    expected = {"endpoint": small_hub.url, "has_token": True}
    assert result.tasks["in_task"].xcom["return_value"] == expected
    assert result.tasks["in_trigger"].xcom["return_value"] == expected
    assert TOKEN not in result.log
