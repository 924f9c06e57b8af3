"""The client against a Hub that misbehaves: bursts of 5xx, rate limits, slow answers, dropped
connections, an unreachable port. It rides them out within its bounds, fails clearly beyond them,
and never repeats a call that may already have acted unless repeating it is harmless.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_spaces.hub.client import SpacesClient
from airflow_provider_spaces.hub.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HubConnectionError,
    HubHTTPError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_spaces.hub.models import DuplicateResult, SpaceStage
from airflow_provider_spaces.hub.retry import RetryPolicy

SPACE = "demo/app"
RUNTIME = "/api/spaces/demo/app/runtime"
RESTART = "/api/spaces/demo/app/restart"
HARDWARE = "/api/spaces/demo/app/hardware"
DUPLICATE = "/api/spaces/demo/app/duplicate"
TARGET_RUNTIME = "/api/spaces/demo/copy/runtime"
RUNNING = {"stage": "RUNNING", "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}}
# Real seconds: the scripted Hub sleeps longer than the client's read timeout.
SHORT_READ_TIMEOUT = 0.2
SLOWER_THAN_THE_TIMEOUT = 0.6


def closed_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestTransientFailuresAreRiddenOut:
    @pytest.mark.parametrize("status", [500, 502, 503, 504], ids=["500", "502", "503", "504"])
    def test_a_burst_of_server_errors_on_a_read(
        self, hub: Any, client: SpacesClient, fake_time: Any, status: int
    ) -> None:
        hub.reply("GET", RUNTIME, {"error": "upstream"}, status=status, times=3)
        hub.reply("GET", RUNTIME, RUNNING)

        runtime = client.get_space_runtime(SPACE)

        assert runtime.stage is SpaceStage.RUNNING
        assert len(hub.requests) == 4
        assert len(fake_time.sleeps) == 3

    def test_a_burst_of_500_on_an_idempotent_write_is_repeated(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", HARDWARE, {"error": "oops"}, status=500, times=2)
        hub.reply("POST", HARDWARE, {"stage": "RUNNING", "hardware": {"requested": "t4-small"}})

        runtime = client.request_space_hardware(SPACE, "t4-small")

        assert runtime.requested_hardware == "t4-small"
        assert [each.json for each in hub.requests] == [{"flavor": "t4-small"}] * 3

    def test_429_with_retry_after_waits_what_the_hub_says(
        self, hub: Any, client: SpacesClient, fake_time: Any
    ) -> None:
        hub.reply("GET", RUNTIME, {"error": "Too many requests"}, status=429, headers={"Retry-After": "7"})
        hub.reply("GET", RUNTIME, RUNNING)

        client.get_space_runtime(SPACE)

        assert len(hub.requests) == 2
        assert len(fake_time.sleeps) == 1 and fake_time.sleeps[0] >= 7

    def test_429_with_only_the_ratelimit_headers_waits_for_the_reset(
        self, hub: Any, client: SpacesClient, fake_time: Any
    ) -> None:
        headers = {"RateLimit": '"api";r=0;t=12', "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'}
        hub.reply("GET", RUNTIME, {"error": "Too many requests"}, status=429, headers=headers)
        hub.reply("GET", RUNTIME, RUNNING)

        client.get_space_runtime(SPACE)

        assert fake_time.sleeps[0] >= 12
        assert client.rate_limit is not None and client.rate_limit.quota == 1000

    def test_429_and_503_are_repeated_even_for_a_restart(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("POST", RESTART, {"error": "slow down"}, status=429, headers={"Retry-After": "1"})
        hub.reply("POST", RESTART, {"error": "unavailable"}, status=503)
        hub.reply("POST", RESTART, {"stage": "BUILDING"})

        runtime = client.restart_space(SPACE)

        assert runtime.stage is SpaceStage.BUILDING
        assert len(hub.calls("POST", RESTART)) == 3

    def test_an_answer_slower_than_the_read_timeout_is_asked_again(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        client = make_client(read_timeout=SHORT_READ_TIMEOUT)
        hub.reply("GET", RUNTIME, RUNNING, delay=SLOWER_THAN_THE_TIMEOUT)
        hub.reply("GET", RUNTIME, RUNNING)

        assert client.get_space_runtime(SPACE).stage is SpaceStage.RUNNING
        assert len(hub.requests) == 2

    def test_a_dropped_connection_on_a_read_is_asked_again(self, hub: Any, client: SpacesClient) -> None:
        hub.reply("GET", RUNTIME, drop=True, times=2)
        hub.reply("GET", RUNTIME, RUNNING)

        assert client.get_space_runtime(SPACE).stage is SpaceStage.RUNNING
        assert len(hub.requests) == 3

    def test_each_retry_is_logged_at_warning_with_attempt_cause_and_wait(
        self, hub: Any, client: SpacesClient, caplog: pytest.LogCaptureFixture, token: str
    ) -> None:
        hub.reply("GET", RUNTIME, {"error": "busy"}, status=429, headers={"Retry-After": "3"})
        hub.reply("GET", RUNTIME, RUNNING)

        with caplog.at_level(logging.WARNING, logger="airflow_provider_spaces"):
            client.get_space_runtime(SPACE)

        [record] = caplog.records
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith(
            "Could not read the runtime of Space demo/app (attempt 1 of 4: HTTP 429"
        )
        assert "busy" in record.getMessage()
        assert record.getMessage().endswith("retrying in 3.0 s")
        assert token not in caplog.text


class TestBeyondTheBounds:
    def test_server_errors_past_the_attempts_fail_saying_how_many_were_made(
        self, hub: Any, client: SpacesClient, fake_time: Any
    ) -> None:
        hub.always("GET", RUNTIME, {"error": "down for maintenance"}, status=503)

        with pytest.raises(
            ServerError, match=r"down for maintenance .* Gave up after 4 attempts over [\d.]+ s\."
        ) as caught:
            client.get_space_runtime(SPACE)

        assert len(hub.requests) == 4
        assert caught.value.attempts == 4
        assert caught.value.is_transient

    def test_waits_never_run_past_the_total_time_budget(
        self, hub: Any, make_client: Callable[..., SpacesClient], fake_time: Any
    ) -> None:
        policy = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0, total_timeout=10.0)
        client = make_client(retry=policy)
        hub.always("GET", RUNTIME, {"error": "busy"}, status=429, headers={"Retry-After": "4"})

        with pytest.raises(RateLimitedError):
            client.get_space_runtime(SPACE)

        assert len(hub.requests) == 3  # waits end at 4 s and 8 s; a third would end at 12 s
        assert sum(fake_time.sleeps) <= policy.total_timeout

    def test_a_rate_limit_longer_than_the_budget_fails_at_once_saying_when_to_come_back(
        self, hub: Any, client: SpacesClient, fake_time: Any
    ) -> None:
        headers = {"Retry-After": "240", "RateLimit": '"api";r=0;t=240'}
        hub.always("GET", RUNTIME, {"error": "Too many requests"}, status=429, headers=headers)

        with pytest.raises(
            RateLimitedError, match=r"HTTP 429 Too Many Requests: Too many requests .*Come back in 240 s"
        ):
            client.get_space_runtime(SPACE)

        assert len(hub.requests) == 1
        assert fake_time.sleeps == []

    def test_an_unreachable_hub_fails_with_a_connection_error_after_the_attempts(
        self, make_client: Callable[..., SpacesClient], fake_time: Any
    ) -> None:
        client = make_client(endpoint=f"http://127.0.0.1:{closed_port()}")

        with pytest.raises(
            HubConnectionError, match="Could not read the runtime of Space demo/app: could not connect"
        ) as caught:
            client.get_space_runtime(SPACE)

        assert caught.value.may_have_acted is False
        assert caught.value.attempts == 4
        assert len(fake_time.sleeps) == 3

    def test_an_unreachable_hub_is_retried_even_for_a_restart_since_nothing_was_sent(
        self, make_client: Callable[..., SpacesClient], fake_time: Any
    ) -> None:
        client = make_client(endpoint=f"http://127.0.0.1:{closed_port()}")

        with pytest.raises(HubConnectionError) as caught:
            client.restart_space(SPACE)

        assert caught.value.attempts == 4

    def test_a_hub_that_stays_slow_fails_with_a_read_timeout_error(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        client = make_client(
            read_timeout=SHORT_READ_TIMEOUT, retry=RetryPolicy(max_attempts=2, base_delay=0.1)
        )
        hub.always("GET", RUNTIME, RUNNING, delay=SLOWER_THAN_THE_TIMEOUT)

        with pytest.raises(HubConnectionError, match="did not answer within the read timeout") as caught:
            client.get_space_runtime(SPACE)

        assert caught.value.may_have_acted is True
        assert len(hub.requests) == 2


class TestNothingIsRepeatedThatMayHaveActed:
    def test_a_restart_that_timed_out_is_not_sent_again(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        client = make_client(read_timeout=SHORT_READ_TIMEOUT)
        hub.always("POST", RESTART, {"stage": "BUILDING"}, delay=SLOWER_THAN_THE_TIMEOUT)

        with pytest.raises(
            HubConnectionError, match="was not repeated automatically: read the Space's runtime"
        ):
            client.restart_space(SPACE)

        assert len(hub.calls("POST", RESTART)) == 1

    def test_a_restart_whose_connection_dropped_is_not_sent_again(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.always("POST", RESTART, drop=True)

        with pytest.raises(HubConnectionError) as caught:
            client.restart_space(SPACE)

        assert caught.value.may_have_acted is True
        assert len(hub.calls("POST", RESTART)) == 1

    @pytest.mark.parametrize("status", [500, 502, 504], ids=["500", "502", "504"])
    def test_a_restart_answered_with_a_server_error_is_not_sent_again(
        self, hub: Any, client: SpacesClient, status: int
    ) -> None:
        hub.always("POST", RESTART, {"error": "gateway"}, status=status)

        with pytest.raises(ServerError, match="The Hub may have acted on this request before failing"):
            client.restart_space(SPACE)

        assert len(hub.calls("POST", RESTART)) == 1

    @pytest.mark.parametrize(
        ("status", "kind"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (409, ConflictError),
        ],
        ids=["400", "401", "403", "404", "409"],
    )
    def test_final_errors_are_never_retried(
        self, hub: Any, client: SpacesClient, fake_time: Any, status: int, kind: type[HubHTTPError]
    ) -> None:
        hub.always("POST", HARDWARE, {"error": "no"}, status=status)

        with pytest.raises(kind) as caught:
            client.request_space_hardware(SPACE, "a10g-large")

        assert len(hub.requests) == 1
        assert fake_time.sleeps == []
        assert caught.value.is_final
        assert "Gave up" not in str(caught.value)


class TestADuplicateThatMayHaveActed:
    def test_the_target_exists_afterwards_so_it_counts_as_made(self, hub: Any, client: SpacesClient) -> None:
        hub.always("POST", DUPLICATE, drop=True)
        hub.reply("GET", TARGET_RUNTIME, {"stage": "BUILDING"})

        result = client.duplicate_space(SPACE, "demo/copy", secrets={"TOKEN_FOR_APP": "v"})

        assert result == DuplicateResult(
            url=f"{hub.url}/spaces/demo/copy", space_id="demo/copy", created=True
        )
        assert [f"{each.method} {each.path}" for each in hub.requests] == [
            f"POST {DUPLICATE}",
            f"GET {TARGET_RUNTIME}",
        ]

    def test_the_target_is_missing_afterwards_so_the_duplicate_is_sent_again(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", DUPLICATE, {"error": "bad gateway"}, status=502)
        hub.reply("GET", TARGET_RUNTIME, {"error": "Repository not found"}, status=404)
        hub.reply("POST", DUPLICATE, {"url": "https://hub.example/spaces/demo/copy"})

        result = client.duplicate_space(SPACE, "demo/copy")

        assert result.created is True and result.url == "https://hub.example/spaces/demo/copy"
        assert len(hub.calls("POST", DUPLICATE)) == 2

    def test_a_late_first_attempt_makes_the_second_one_conflict_and_that_is_still_a_creation(
        self, hub: Any, make_client: Callable[..., SpacesClient]
    ) -> None:
        client = make_client(read_timeout=SHORT_READ_TIMEOUT)
        hub.reply("POST", DUPLICATE, {"url": "late"}, delay=SLOWER_THAN_THE_TIMEOUT)
        hub.reply("GET", TARGET_RUNTIME, {"error": "Repository not found"}, status=404)
        hub.reply(
            "POST", DUPLICATE, {"error": "exists", "url": "https://hub.example/spaces/demo/copy"}, status=409
        )

        result = client.duplicate_space(SPACE, "demo/copy")

        assert result == DuplicateResult(
            url="https://hub.example/spaces/demo/copy", space_id="demo/copy", created=True
        )

    def test_when_the_check_itself_fails_the_original_error_says_to_look_first(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.always("POST", DUPLICATE, {"error": "internal"}, status=500)
        hub.always("GET", TARGET_RUNTIME, {"error": "bad token"}, status=401)

        with pytest.raises(
            ServerError, match="Could not check whether demo/copy was created .*look for it on the Hub"
        ):
            client.duplicate_space(SPACE, "demo/copy")

        assert len(hub.calls("POST", DUPLICATE)) == 1

    def test_a_duplicate_refused_before_acting_is_simply_retried(
        self, hub: Any, client: SpacesClient
    ) -> None:
        hub.reply("POST", DUPLICATE, {"error": "unavailable"}, status=503)
        hub.reply("POST", DUPLICATE, {"url": "https://hub.example/spaces/demo/copy"})

        assert client.duplicate_space(SPACE, "demo/copy").created is True
        assert hub.calls("GET") == []
