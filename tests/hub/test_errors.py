"""Turning the Hub's error answers into errors that say what happened and what to check next."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from airflow_provider_spaces.hub.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HubConnectionError,
    HubError,
    HubHTTPError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SpaceStageError,
    SpaceWaitTimeout,
    UnexpectedResponseError,
    error_from_response,
)


def hub_error(
    status: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> HubHTTPError:
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    kwargs.setdefault("space_id", "demo/app")
    kwargs.setdefault("action", "request hardware for {space}")
    return error_from_response(status, headers or {"X-Request-Id": "rid-42"}, raw, **kwargs)


@pytest.mark.parametrize(
    ("status", "kind", "message", "hint"),
    [
        (400, BadRequestError, "Static Spaces have no hardware", "static Spaces have no hardware"),
        (401, AuthenticationError, "Invalid credentials", "lacks write access to this Space's settings"),
        (403, PermissionDeniedError, "Payment method required", "payment method"),
        (404, NotFoundError, "Repository not found", "Check the Space id .* private Space"),
        (409, ConflictError, "You already created this space repo", "already exists"),
        (429, RateLimitedError, "Too many requests", "Wait before calling again"),
        (500, ServerError, "Internal Error", "failed on its side"),
        (502, ServerError, "Bad gateway", "usually temporary"),
        (503, ServerError, "Service unavailable", "try again later"),
    ],
    ids=["400", "401", "403", "404", "409", "429", "500", "502", "503"],
)
def test_each_status_becomes_its_error_with_the_hubs_words_and_the_next_step(
    status: int, kind: type[HubHTTPError], message: str, hint: str
) -> None:
    error = hub_error(status, {"error": message}, {"X-Request-Id": "rid-42", "X-Error-Code": "SomeCode"})

    assert type(error) is kind
    assert error.status == status
    assert (error.space_id, error.action) == ("demo/app", "request hardware for Space demo/app")
    assert (error.hub_message, error.error_code, error.request_id) == (message, "SomeCode", "rid-42")
    with pytest.raises(
        kind, match=rf"Could not request hardware for Space demo/app: HTTP {status} [A-Za-z ]+ \(SomeCode\)"
    ):
        raise error
    with pytest.raises(kind, match=rf"{message} \[request id rid-42\]\. .*{hint}"):
        raise error


def test_401_is_not_reported_as_not_found() -> None:
    error = hub_error(401, {"error": "Invalid username or password."})

    assert isinstance(error, AuthenticationError)
    assert not isinstance(error, NotFoundError)
    assert "not found" not in str(error).lower()


def test_401_without_a_token_says_no_token_was_sent() -> None:
    with pytest.raises(AuthenticationError, match="No token was sent"):
        raise hub_error(401, {"error": "Unauthorized"}, authenticated=False)


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"error": "from the body"}, {"X-Error-Message": "from the header"}, "from the body"),
        ({"detail": "other shape"}, {"X-Error-Message": "from the header"}, "from the header"),
        (b"<html><body>502 Bad Gateway</body></html>", {}, "<html><body>502 Bad Gateway</body></html>"),
        (None, {}, None),
    ],
    ids=["json-error-wins", "header-when-no-error-key", "text-body", "nothing"],
)
def test_the_hubs_message_comes_from_the_body_then_the_header(
    body: Any, headers: dict[str, str], expected: str | None
) -> None:
    assert hub_error(400, body, headers).hub_message == expected


def test_a_long_html_page_is_quoted_short() -> None:
    error = hub_error(502, ("<p>" + "x" * 5000 + "</p>").encode())

    assert error.hub_message is not None
    assert len(error.hub_message) < 250
    assert error.hub_message.endswith("...")


def test_values_to_redact_never_reach_the_message() -> None:
    error = hub_error(400, {"error": "bad value s3cr3t-value for key API_KEY"}, redact=["s3cr3t-value", ""])

    assert "s3cr3t-value" not in str(error)
    assert "bad value *** for key API_KEY" in str(error)


def test_409_carries_the_url_of_the_existing_target() -> None:
    error = hub_error(409, {"error": "exists", "url": "https://hub.example/spaces/demo/copy"})

    assert isinstance(error, ConflictError)
    assert isinstance(error, AlreadyExistsError)
    assert error.url == "https://hub.example/spaces/demo/copy"


def test_429_says_when_to_come_back_and_what_the_quota_is() -> None:
    error = hub_error(
        429,
        {"error": "Too many requests"},
        {
            "Retry-After": "42",
            "RateLimit": '"api";r=0;t=42',
            "RateLimit-Policy": '"fixed window";"api";q=1000;w=300',
        },
    )

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 42
    assert error.rate_limit is not None and error.rate_limit.quota == 1000
    with pytest.raises(RateLimitedError, match=r"Come back in 42 s\. The quota is 1000 calls per 300 s"):
        raise error


def test_429_with_only_the_ratelimit_header_still_says_when() -> None:
    error = hub_error(429, {"error": "slow down"}, {"RateLimit": '"api";r=0;t=17'})

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 17


def test_503_keeps_the_retry_after_it_was_sent() -> None:
    error = hub_error(503, None, {"Retry-After": "3"})

    assert isinstance(error, ServerError)
    assert error.retry_after == 3


def test_an_unusual_client_status_is_still_a_final_hub_error() -> None:
    error = hub_error(422, {"error": "Unprocessable"})

    assert type(error) is HubHTTPError
    assert error.is_final
    with pytest.raises(
        HubHTTPError, match=r"HTTP 422 Unprocessable (Content|Entity): Unprocessable \[request id rid-42\]\.$"
    ):
        raise error


def test_header_names_match_whatever_their_case() -> None:
    error = hub_error(404, None, {"x-request-id": "lower", "x-error-message": "Repository not found"})

    assert (error.request_id, error.hub_message) == ("lower", "Repository not found")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (BadRequestError(status=400), False),
        (AuthenticationError(status=401), False),
        (PermissionDeniedError(status=403), False),
        (NotFoundError(status=404), False),
        (ConflictError(status=409), False),
        (InvalidArgumentError("space_id", "bad"), False),
        (SpaceStageError("broken", space_id="demo/app", stage="BUILD_ERROR"), False),
        (RateLimitedError(status=429), True),
        (ServerError(status=500), True),
        (UnexpectedResponseError("garbled"), True),
        (HubConnectionError("refused", may_have_acted=False), True),
        (SpaceWaitTimeout(space_id="demo/app", last_stage="BUILDING", waited_seconds=600), True),
    ],
    ids=[
        "400",
        "401",
        "403",
        "404",
        "409",
        "invalid-argument",
        "stage-error",
        "429",
        "5xx",
        "garbled",
        "connection",
        "wait-timeout",
    ],
)
def test_final_and_transient_errors_are_told_apart(error: HubError, transient: bool) -> None:
    assert error.is_transient is transient
    assert error.is_final is not transient


def test_invalid_argument_is_also_a_value_error_naming_the_argument() -> None:
    error = InvalidArgumentError("sleep_time", "must be > 0")

    assert isinstance(error, ValueError)
    assert error.argument == "sleep_time"
    with pytest.raises(ValueError, match=r"^Invalid sleep_time: must be > 0\.$"):
        raise error


def test_wait_timeout_names_the_space_its_last_stage_and_the_wait() -> None:
    with pytest.raises(
        TimeoutError, match=r"Space demo/app waited for RUNNING for 600 s .* last stage: BUILDING"
    ):
        raise SpaceWaitTimeout(
            space_id="demo/app", last_stage="BUILDING", waited_seconds=600, target="RUNNING"
        )


def test_connection_error_that_may_have_reached_the_hub_says_to_check_first() -> None:
    with pytest.raises(
        HubConnectionError,
        match="Could not restart Space demo/app: read timeout. .*may have reached the Hub before the connection failed",
    ):
        raise HubConnectionError(
            "read timeout", may_have_acted=True, space_id="demo/app", action="restart {space}"
        )


def test_errors_survive_pickling_with_their_fields() -> None:
    error = hub_error(429, {"error": "slow"}, {"Retry-After": "5", "X-Request-Id": "rid-9"})
    error.attempts = 3

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is RateLimitedError
    assert (copy.status, copy.retry_after, copy.request_id, copy.attempts) == (429, 5, "rid-9", 3)
    assert str(copy) == str(error)


def test_giving_up_after_several_attempts_is_said() -> None:
    error = hub_error(503, {"error": "down"})
    error.attempts, error.elapsed = 4, 12.5

    assert "Gave up after 4 attempts over 12.5 s." in str(error)
