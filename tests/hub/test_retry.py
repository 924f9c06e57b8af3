"""The retry rules on their own: which failures may be repeated, how long to wait, header parsing."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_spaces.hub.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HubConnectionError,
    HubError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_spaces.hub.models import RateLimitState
from airflow_provider_spaces.hub.retry import (
    RetryPolicy,
    hub_did_not_act,
    may_repeat,
    next_delay,
    parse_rate_limit,
    parse_retry_after,
    server_wait,
)

POLICY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0, total_timeout=60.0)


def delay_after(
    error: HubError, *, attempt: int = 1, elapsed: float = 0.0, idempotent: bool = True
) -> float | None:
    return next_delay(
        POLICY,
        error,
        attempt=attempt,
        elapsed=elapsed,
        previous_delay=None,
        idempotent=idempotent,
        rng=random.Random(7),
    )


class TestWhatMayBeRepeated:
    @pytest.mark.parametrize(
        ("error", "not_acted"),
        [
            (HubConnectionError("refused", may_have_acted=False), True),
            (RateLimitedError(status=429), True),
            (ServerError(status=503), True),
            (HubConnectionError("read timeout", may_have_acted=True), False),
            (ServerError(status=500), False),
            (ServerError(status=502), False),
            (ServerError(status=504), False),
            (UnexpectedResponseError("garbled", status=200), False),
        ],
        ids=["refused", "429", "503", "read-timeout", "500", "502", "504", "garbled-200"],
    )
    def test_the_hub_did_not_act_only_when_it_certainly_did_not(
        self, error: HubError, not_acted: bool
    ) -> None:
        assert hub_did_not_act(error) is not_acted
        assert may_repeat(error, idempotent=True)
        assert may_repeat(error, idempotent=False) is not_acted

    @pytest.mark.parametrize(
        "error",
        [
            BadRequestError(status=400),
            AuthenticationError(status=401),
            PermissionDeniedError(status=403),
            NotFoundError(status=404),
            ConflictError(status=409),
            InvalidArgumentError("space_id", "bad"),
        ],
        ids=["400", "401", "403", "404", "409", "invalid-argument"],
    )
    def test_final_errors_are_never_repeated(self, error: HubError) -> None:
        assert not may_repeat(error, idempotent=True)
        assert delay_after(error) is None


class TestHowLongToWait:
    def test_full_jitter_stays_under_the_exponential_step(self) -> None:
        rng = random.Random(1)
        for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
            waits = [POLICY.backoff(attempt, None, rng) for _ in range(200)]
            assert all(0 <= wait <= ceiling for wait in waits)
            assert max(waits) > ceiling / 2  # the jitter spreads over the whole step

    def test_decorrelated_jitter_grows_from_the_previous_wait_and_is_capped(self) -> None:
        policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter="decorrelated")
        rng = random.Random(2)

        waits = [policy.backoff(2, 3.0, rng) for _ in range(200)]

        assert all(1.0 <= wait <= 9.0 for wait in waits)
        assert all(policy.backoff(2, 8.0, rng) <= 10.0 for _ in range(200))

    def test_a_retry_after_is_honoured_even_beyond_the_backoff_cap(self) -> None:
        assert delay_after(RateLimitedError(status=429, retry_after=25)) == 25

    def test_a_retry_after_on_503_is_honoured(self) -> None:
        assert delay_after(ServerError(status=503, retry_after=4)) == 4

    def test_a_wait_that_would_pass_the_time_budget_is_not_started(self) -> None:
        assert delay_after(RateLimitedError(status=429, retry_after=30), elapsed=31) is None
        assert delay_after(RateLimitedError(status=429, retry_after=30), elapsed=29) == 30

    def test_the_hub_asking_for_longer_than_the_whole_budget_gives_up_at_once(self) -> None:
        assert delay_after(RateLimitedError(status=429, retry_after=3600)) is None

    def test_no_retry_after_the_last_attempt(self) -> None:
        assert delay_after(ServerError(status=503), attempt=4) is not None
        assert delay_after(ServerError(status=503), attempt=5) is None

    def test_a_call_that_may_have_acted_is_repeated_only_when_idempotent(self) -> None:
        error = HubConnectionError("read timeout", may_have_acted=True)

        assert delay_after(error, idempotent=True) is not None
        assert delay_after(error, idempotent=False) is None

    def test_no_retries_policy_sends_once(self) -> None:
        policy = RetryPolicy.no_retries()
        error = ServerError(status=503)

        assert (
            next_delay(
                policy, error, attempt=1, elapsed=0, previous_delay=None, idempotent=True, rng=random.Random()
            )
            is None
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", 0, "must be at least 1"),
        ("max_attempts", 2.5, "must be an int"),
        ("max_attempts", True, "must be an int"),
        ("base_delay", -1, "must be a number of seconds >= 0"),
        ("total_timeout", "60", "must be a number of seconds >= 0"),
        ("jitter", "equal", "must be 'full' or 'decorrelated'"),
    ],
    ids=[
        "zero-attempts",
        "float-attempts",
        "bool-attempts",
        "negative-delay",
        "string-timeout",
        "unknown-jitter",
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid {field}: {message}"):
        RetryPolicy(**{field: value})


def test_a_max_delay_under_the_base_delay_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="^Invalid max_delay: must not be shorter than base_delay"):
        RetryPolicy(base_delay=5, max_delay=1)


class TestHeaders:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("120", 120.0), (" 3 ", 3.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
        ids=["seconds", "padded", "fraction", "negative", "garbage", "empty", "absent"],
    )
    def test_retry_after_in_seconds(self, value: str | None, seconds: float | None) -> None:
        assert parse_retry_after(value) == seconds

    def test_retry_after_as_an_http_date(self) -> None:
        now = datetime(2026, 12, 4, 16, 0, 0, tzinfo=timezone.utc)

        assert parse_retry_after("Fri, 04 Dec 2026 16:01:30 GMT", now=now) == 90
        assert parse_retry_after("Fri, 04 Dec 2026 15:00:00 GMT", now=now) == 0

    def test_both_rate_limit_headers(self) -> None:
        state = parse_rate_limit(
            {"RateLimit": '"api";r=12;t=140', "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'}
        )

        assert state == RateLimitState(
            remaining=12, reset_seconds=140, quota=1000, window_seconds=300, bucket="api"
        )
        assert not state.exhausted
        assert state.wait_seconds() is None

    def test_a_spent_quota_says_how_long_to_wait(self) -> None:
        state = parse_rate_limit({"ratelimit": '"api";r=0;t=42'})

        assert state is not None and state.exhausted
        assert state.wait_seconds() == 42
        assert (state.quota, state.window_seconds) == (None, None)

    def test_only_the_policy_header(self) -> None:
        state = parse_rate_limit({"RateLimit-Policy": '"fixed window";"api";q=500;w=300'})

        assert state == RateLimitState(quota=500, window_seconds=300, bucket="api")

    def test_no_rate_limit_headers(self) -> None:
        assert parse_rate_limit({"Content-Type": "application/json"}) is None

    def test_malformed_rate_limit_values_are_left_out(self) -> None:
        state = parse_rate_limit({"RateLimit": '"api";r=lots;t=;x'})

        assert state == RateLimitState(bucket="api")

    @pytest.mark.parametrize(
        ("headers", "wait"),
        [
            ({"Retry-After": "7", "RateLimit": '"api";r=0;t=40'}, 7),
            ({"RateLimit": '"api";r=0;t=40'}, 40),
            ({"RateLimit": '"api";r=3;t=40'}, None),
            ({}, None),
        ],
        ids=["retry-after-first", "spent-ratelimit", "quota-left", "nothing"],
    )
    def test_server_wait_prefers_retry_after_then_a_spent_quota(
        self, headers: dict[str, str], wait: float | None
    ) -> None:
        assert server_wait(headers) == wait
