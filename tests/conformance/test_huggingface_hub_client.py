"""The official ``huggingface_hub`` client against the emulator: each Space call it makes.

Fidelity check: the client parses what the emulator answers into the same objects and raises the
same exception classes it would for the real Hub. The client is a test-only dependency.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from huggingface_hub import HfApi, SpaceRuntime
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError

from airflow_provider_spaces.emulator.server import HubEmulator

SPACE = "demo/app"
TIMINGS = {"build_seconds": 30, "start_seconds": 10, "schedule_seconds": 5}
STILL = 0.001


@pytest.fixture(scope="module")
def _emulator() -> Iterator[HubEmulator]:
    with HubEmulator(speed=STILL) as emulator:
        yield emulator


@pytest.fixture
def hub(_emulator: HubEmulator) -> HubEmulator:
    # A still clock: stages change only when the test advances it. One server for the module,
    # reset for each test, because stopping a server costs a fifth of a second.
    _emulator.reset()
    _emulator.set_speed(STILL)
    _emulator.add_space(SPACE, **TIMINGS)
    return _emulator


@pytest.fixture
def client(hub: HubEmulator) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.write_token)


def test_get_space_runtime_parses_stage_hardware_and_sleep_time(client: HfApi) -> None:
    runtime = client.get_space_runtime(SPACE)

    assert isinstance(runtime, SpaceRuntime)
    assert (runtime.stage, runtime.hardware, runtime.requested_hardware) == (
        "RUNNING",
        "cpu-basic",
        "cpu-basic",
    )
    assert runtime.sleep_time == 172800
    assert runtime.dev_mode is False and runtime.storage is None


def test_request_space_hardware_with_a_sleep_time(client: HfApi, hub: HubEmulator) -> None:
    runtime = client.request_space_hardware(SPACE, "a10g-large", sleep_time=3600)
    hub.advance(5 + 30 + 10 + 1)
    arrived = client.get_space_runtime(SPACE)

    assert (runtime.stage, runtime.hardware, runtime.requested_hardware) == (
        "RUNNING",
        "cpu-basic",
        "a10g-large",
    )
    assert runtime.sleep_time == 3600
    assert (arrived.stage, arrived.hardware) == ("RUNNING", "a10g-large")
    assert hub.request_log()[-2]["body"] == {"flavor": "a10g-large", "sleepTimeSeconds": 3600}


def test_set_space_sleep_time_on_paid_hardware(client: HfApi, hub: HubEmulator) -> None:
    hub.add_space("demo/gpu", hardware="t4-small")

    runtime = client.set_space_sleep_time("demo/gpu", 900)

    assert runtime.sleep_time == 900


def test_set_space_sleep_time_on_cpu_basic_is_a_bad_request(client: HfApi) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BadRequestError, match="only be set on upgraded hardware"):
            client.set_space_sleep_time(SPACE, 900)


def test_pause_space_then_restart_space(client: HfApi, hub: HubEmulator) -> None:
    paused = client.pause_space(SPACE)
    restarted = client.restart_space(SPACE)

    assert (paused.stage, paused.hardware, paused.requested_hardware) == ("PAUSED", None, "cpu-basic")
    assert restarted.stage == "BUILDING"


def test_restart_space_with_factory_reboot(client: HfApi, hub: HubEmulator) -> None:
    runtime = client.restart_space(SPACE, factory_reboot=True)

    assert runtime.stage == "BUILDING"
    assert hub.request_log()[-1]["query"] == {"factory": "true"}
    hub.advance(89)
    assert client.get_space_runtime(SPACE).stage == "BUILDING"


def test_add_and_delete_space_secrets(client: HfApi) -> None:
    client.add_space_secret(SPACE, "API_KEY", "s3cr3t", description="vendor key")
    listed = client.get_space_secrets(SPACE)
    client.delete_space_secret(SPACE, "API_KEY")
    client.delete_space_secret(SPACE, "API_KEY")

    assert list(listed) == ["API_KEY"]
    assert listed["API_KEY"].description == "vendor key"
    assert client.get_space_secrets(SPACE) == {}


def test_get_add_and_delete_space_variables(client: HfApi) -> None:
    empty = client.get_space_variables(SPACE)
    added = client.add_space_variable(SPACE, "MODEL", "gpt2", description="model id")
    listed = client.get_space_variables(SPACE)
    deleted = client.delete_space_variable(SPACE, "MODEL")

    assert empty == {}
    assert added["MODEL"].value == "gpt2" and added["MODEL"].description == "model id"
    assert listed["MODEL"].updated_at is not None
    assert deleted == {}


def test_duplicate_a_space_with_its_settings(client: HfApi, hub: HubEmulator) -> None:
    client.add_space_variable(SPACE, "MODEL", "gpt2")

    url = client.duplicate_repo(
        SPACE,
        "demo/staging",
        repo_type="space",
        private=True,
        space_hardware="t4-small",
        space_sleep_time=1800,
        space_secrets=[{"key": "API_KEY", "value": "staging"}],
        space_variables=[{"key": "ENV", "value": "staging"}],
    )

    assert url.repo_id == "demo/staging"
    runtime = client.get_space_runtime("demo/staging")
    assert (runtime.stage, runtime.requested_hardware, runtime.sleep_time) == ("BUILDING", "t4-small", 1800)
    assert set(client.get_space_variables("demo/staging")) == {"MODEL", "ENV"}
    assert list(client.get_space_secrets("demo/staging")) == ["API_KEY"]
    assert client.space_info("demo/staging").private is True


def test_duplicate_onto_an_existing_space(client: HfApi, hub: HubEmulator) -> None:
    hub.add_space("demo/staging")

    url = client.duplicate_repo(SPACE, "demo/staging", repo_type="space", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as refused:
        client.duplicate_repo(SPACE, "demo/staging", repo_type="space")

    assert url.repo_id == "demo/staging"
    assert refused.value.response.status_code == 409


def test_wait_for_space_returns_once_the_space_settles(hub: HubEmulator, client: HfApi) -> None:
    client.restart_space(SPACE, factory_reboot=True)
    hub.set_speed(600)

    runtime = client.wait_for_space(SPACE, timeout=60, poll_interval=0.05)

    assert runtime.stage == "RUNNING"


def test_wait_for_space_returns_a_build_error_at_once(hub: HubEmulator, client: HfApi) -> None:
    hub.add_fault("build_error", space_id=SPACE, message="no GPU drivers")
    client.restart_space(SPACE, factory_reboot=True)
    hub.advance(100)

    runtime = client.wait_for_space(SPACE, timeout=60, poll_interval=0.05)

    assert runtime.stage == "BUILD_ERROR"
    assert runtime.raw["errorMessage"] == "no GPU drivers"


def test_wait_for_space_times_out_on_a_stuck_build(hub: HubEmulator, client: HfApi) -> None:
    hub.add_fault("stuck", space_id=SPACE)
    client.restart_space(SPACE, factory_reboot=True)

    with pytest.raises(TimeoutError, match="still in stage 'BUILDING'"):
        client.wait_for_space(SPACE, timeout=0.3, poll_interval=0.05)


def test_space_info_list_hardware_and_whoami(client: HfApi) -> None:
    info = client.space_info(SPACE)
    hardware = {entry.name: entry for entry in client.list_spaces_hardware()}
    me = client.whoami()

    assert info.id == SPACE and info.sdk == "gradio"
    assert info.runtime is not None and info.runtime.stage == "RUNNING"
    assert hardware["a10g-large"].unit_cost_usd == 0.025 and hardware["a10g-large"].unit_label == "minute"
    assert me["name"] == "demo" and me["auth"]["accessToken"]["role"] == "write"


# == errors: the same exception classes as with the real Hub ======================================


def test_a_missing_space_raises_repository_not_found(client: HfApi) -> None:
    with pytest.raises(RepositoryNotFoundError) as missing:
        client.get_space_runtime("demo/never-made")

    assert missing.value.response.status_code == 404
    assert missing.value.request_id == missing.value.response.headers["X-Request-Id"]


def test_a_private_space_of_someone_else_raises_repository_not_found(hub: HubEmulator) -> None:
    hub.add_space("demo/secret-app", private=True)
    stranger = HfApi(endpoint=hub.url, token=hub.add_token("alice"))

    with pytest.raises(RepositoryNotFoundError):
        stranger.get_space_runtime("demo/secret-app")


def test_an_unknown_token_raises_an_http_error_401_not_repository_not_found(hub: HubEmulator) -> None:
    client = HfApi(endpoint=hub.url, token="hf_not_a_token_we_know")

    with pytest.raises(HfHubHTTPError) as refused:
        client.get_space_runtime(SPACE)
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        client.whoami()

    assert not isinstance(refused.value, RepositoryNotFoundError)
    assert refused.value.response.status_code == 401


def test_a_read_only_token_asking_for_a_change_raises_401_saying_why(hub: HubEmulator) -> None:
    client = HfApi(endpoint=hub.url, token=hub.read_token)

    with pytest.raises(HfHubHTTPError, match="role 'read'") as refused:
        client.pause_space(SPACE)

    assert refused.value.response.status_code == 401
    assert refused.value.server_message is not None and "write" in refused.value.server_message


def test_a_space_the_token_does_not_own_raises_403(hub: HubEmulator) -> None:
    client = HfApi(endpoint=hub.url, token=hub.add_token("alice"))

    with pytest.raises(HfHubHTTPError, match="403 Forbidden") as refused:
        client.restart_space(SPACE)

    assert refused.value.response.status_code == 403


def test_a_static_space_raises_bad_request(client: HfApi, hub: HubEmulator) -> None:
    hub.add_space("demo/site", sdk="static", hardware=None)

    with pytest.raises(BadRequestError, match="static Space"):
        client.pause_space("demo/site")


def test_a_rate_limited_call_names_the_wait(client: HfApi, hub: HubEmulator) -> None:
    hub.add_fault("rate_limit", count=1, retry_after=42)

    with pytest.raises(HfHubHTTPError, match="Retry after 42 seconds") as limited:
        client.get_space_runtime(SPACE)

    assert limited.value.response.status_code == 429
