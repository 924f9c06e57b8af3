"""When to try a Hub call again, and how long to wait first.

Two questions decide a retry. *May the call be repeated?* Only when a repeat cannot do harm: if the
Hub certainly did not act (the connection was refused, 429, 503), any call may be sent again; if
it may have acted (read timeout, connection dropped after sending, 500/502/504), only calls whose
repetition lands in the same state are. *How long to wait?* What the Hub asks for (``Retry-After``,
or the ``RateLimit`` header once the quota is used up), else exponential backoff with jitter; and
never past the policy's total time budget.

Nothing here performs I/O or imports an HTTP library, so the synchronous client and an
asynchronous one share these rules.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal

from airflow_provider_spaces.hub.errors import (
    HubConnectionError,
    HubError,
    InvalidArgumentError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    describe_action,
    header_value,
)
from airflow_provider_spaces.hub.models import RateLimitState

__all__ = [
    "RetryLoop",
    "RetryPolicy",
    "explain_give_up",
    "hub_did_not_act",
    "may_have_acted",
    "may_repeat",
    "next_delay",
    "parse_rate_limit",
    "parse_retry_after",
    "server_wait",
]

log = logging.getLogger(__name__)

Jitter = Literal["full", "decorrelated"]
# Longest piece of an error's message quoted in a retry's log line.
_MAX_REASON = 200
# A 503 means the Hub turned the request away before handling it; other 5xx may come after it acted.
_NOT_ACTED_STATUSES = frozenset({503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the client tries a call before giving up.

    :param max_attempts: attempts in all, the first included (1 turns retries off).
    :param base_delay: seconds of the first backoff step.
    :param max_delay: longest backoff between two attempts, in seconds. A wait the Hub asks for is
        honoured even when longer, within ``total_timeout``.
    :param total_timeout: seconds from the first attempt after which no new attempt starts; a wait
        that would end past it is not started.
    :param jitter: ``"full"`` (a random wait up to the exponential step) or ``"decorrelated"``
        (a random wait between the base and three times the previous wait).
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    total_timeout: float = 120.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidArgumentError("max_attempts", f"must be an int, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidArgumentError("max_attempts", f"must be at least 1, not {self.max_attempts}")
        for name in ("base_delay", "max_delay", "total_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgumentError(name, f"must be a number of seconds >= 0, not {value!r}")
        if self.max_delay < self.base_delay:
            raise InvalidArgumentError("max_delay", "must not be shorter than base_delay")
        if self.jitter not in ("full", "decorrelated"):
            raise InvalidArgumentError("jitter", f"must be 'full' or 'decorrelated', not {self.jitter!r}")

    @classmethod
    def no_retries(cls) -> RetryPolicy:
        """Return a policy that sends every call once."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, previous_delay: float | None, rng: random.Random) -> float:
        """Return the jittered wait after failed attempt number ``attempt`` (1-based)."""
        if self.jitter == "decorrelated":
            upper = max(self.base_delay, (previous_delay or self.base_delay) * 3)
            return min(self.max_delay, rng.uniform(self.base_delay, upper))
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(0, step)


def hub_did_not_act(error: HubError) -> bool:
    """Tell whether the failed request certainly left the Space untouched."""
    if isinstance(error, RateLimitedError):
        return True
    if isinstance(error, ServerError):
        return error.status in _NOT_ACTED_STATUSES
    if isinstance(error, HubConnectionError):
        return not error.may_have_acted
    return False


def may_repeat(error: HubError, *, idempotent: bool) -> bool:
    """Tell whether the call that raised ``error`` may be sent again automatically.

    :param idempotent: whether sending the call twice leaves the Space as sending it once does.
    """
    if not isinstance(error, (RateLimitedError, ServerError, HubConnectionError, UnexpectedResponseError)):
        # 400/401/403/404/409 and bad arguments: the same call would fail the same way.
        return False
    return hub_did_not_act(error) or idempotent


def next_delay(
    policy: RetryPolicy,
    error: HubError,
    *,
    attempt: int,
    elapsed: float,
    previous_delay: float | None,
    idempotent: bool,
    rng: random.Random,
) -> float | None:
    """Return the seconds to wait before the next attempt, or None to give up and raise ``error``.

    :param attempt: the number of the attempt that just failed (1-based).
    :param elapsed: seconds since the first attempt started.
    """
    if attempt >= policy.max_attempts or not may_repeat(error, idempotent=idempotent):
        return None

    asked = _asked_wait(error)
    delay = policy.backoff(attempt, previous_delay, rng)
    if asked is not None:
        # Never come back before the Hub said to; a longer backoff is fine.
        delay = max(asked, delay)

    if elapsed + delay > policy.total_timeout:
        return None
    return delay


def may_have_acted(error: HubError) -> bool:
    """Tell whether ``error`` is a transient failure after which the Hub may have done the work."""
    return may_repeat(error, idempotent=True) and not hub_did_not_act(error)


def explain_give_up(error: HubError, *, attempts: int, elapsed: float, idempotent: bool) -> None:
    """Record on ``error`` how many attempts were made, and say why a risky call was not repeated."""
    error.attempts = attempts
    error.elapsed = elapsed
    if not idempotent and may_have_acted(error):
        error.hint = (
            f"{error.hint or ''} The Hub may have acted on this request before failing, so it was not "
            "repeated automatically: read the Space's runtime before trying again."
        ).strip()


class RetryLoop:
    """Follow one call through its attempts, for the synchronous and the asynchronous client alike.

    The client sends the call, and after each failure asks :meth:`after_failure` how long to wait;
    it sleeps that long (its own way) and sends again, or raises the error when told None.

    :param action: what the call does, ``{space}`` standing for the Space, for the log line.
    :param idempotent: whether the call may be repeated after the Hub may have acted on it.
    :param clock: a monotonic clock in seconds, for the policy's time budget.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        action: str,
        space_id: str | None,
        idempotent: bool,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.policy = policy
        self.action = action
        self.space_id = space_id
        self.idempotent = idempotent
        self._clock = clock
        self._rng = rng
        self._started = clock()
        self._previous: float | None = None
        self.attempt = 1

    def after_failure(self, error: HubError) -> float | None:
        """Return the seconds to wait before the next attempt, or None when ``error`` is final.

        When giving up, ``error`` learns how many attempts were made; otherwise the retry is
        logged as a warning with its attempt count and wait.
        """
        elapsed = self._clock() - self._started
        delay = next_delay(
            self.policy,
            error,
            attempt=self.attempt,
            elapsed=elapsed,
            previous_delay=self._previous,
            idempotent=self.idempotent,
            rng=self._rng,
        )
        if delay is None:
            explain_give_up(error, attempts=self.attempt, elapsed=elapsed, idempotent=self.idempotent)
            return None

        log.warning(
            "Could not %s (attempt %d of %d: %s); retrying in %.1f s",
            describe_action(self.action, self.space_id),
            self.attempt,
            self.policy.max_attempts,
            short_reason(error),
            delay,
        )
        self.attempt += 1
        self._previous = delay
        return delay


def short_reason(error: BaseException) -> str:
    """Return the message of ``error``, cut to a length that suits one log line."""
    text = error.message if isinstance(error, HubError) else str(error)
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "..."


def _asked_wait(error: HubError) -> float | None:
    if isinstance(error, (RateLimitedError, ServerError)):
        return error.retry_after
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds, or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _parameters(header: str) -> tuple[list[str], dict[str, str]]:
    """Split a structured header such as ``"fixed window";"api";q=1000;w=300`` into names and keys."""
    names: list[str] = []
    params: dict[str, str] = {}
    for raw in header.split(";"):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
        else:
            names.append(item.strip('"'))
    return names, params


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _whole(text: str | None) -> int | None:
    number = _number(text)
    return None if number is None else int(number)


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitState | None:
    """Read the ``RateLimit`` and ``RateLimit-Policy`` headers; None when the answer has neither.

    ``RateLimit: "api";r=<remaining>;t=<seconds to reset>`` and
    ``RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window seconds>``.
    """
    current = header_value(headers, "RateLimit")
    policy = header_value(headers, "RateLimit-Policy")
    if current is None and policy is None:
        return None

    names, now = _parameters(current or "")
    policy_names, limits = _parameters(policy or "")
    bucket = names[0] if names else policy_names[-1] if policy_names else None
    return RateLimitState(
        remaining=_whole(now.get("r")),
        reset_seconds=_number(now.get("t")),
        quota=_whole(limits.get("q")),
        window_seconds=_number(limits.get("w")),
        bucket=bucket,
    )


def server_wait(headers: Mapping[str, str]) -> float | None:
    """Return how long the Hub asks the client to wait: ``Retry-After``, else a spent ``RateLimit``."""
    asked = parse_retry_after(header_value(headers, "Retry-After"))
    if asked is not None:
        return asked
    state = parse_rate_limit(headers)
    return state.wait_seconds() if state is not None else None
