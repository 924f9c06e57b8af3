"""How often to ask the Hub: per-Space poll backoff, and one call budget per token and process.

The Hub counts calls per token in fixed windows (1,000 per 300 s for a free user). A process that
watches many Spaces with one token must spread its calls so that together they stay under that
quota, instead of each watcher polling on its own schedule and the lot collecting 429s. Two pieces
do that:

- :class:`PollSchedule` belongs to one watcher: a Space that stays in the same stage is polled
  less and less often (exponential backoff with jitter, capped), and a change starts it over.
- :class:`PollBudget` is shared by every client of one token in one process (see
  :func:`shared_budget`): a token bucket that lets calls go at a safe share of the quota, with a
  small burst for the calls a task makes in a row, until the Hub's headers tell more. It learns
  the quota and window from ``RateLimit-Policy``, and from ``RateLimit`` how many calls are left
  until the window resets: those, less a margin for calls in flight, it spreads evenly over the
  time to the reset, so that it neither overshoots (someone else spending the token makes it
  slow down) nor leaves the quota unused while watchers wait. None left, or a 429, stops it
  until the reset.

Every call a client sends counts in its budget, but only the reads of wait loops wait for their
turn, in the order they asked (:meth:`PollBudget.acquire` for the synchronous client, ``aio`` for
the asynchronous one), so that many watchers take turns instead of racing. Other calls (a hardware
request, a pause) go at once: they are few, someone waits for them, and the debt they leave makes
the polls that follow wait a little longer. The one wait they keep is a 429's (:meth:`PollBudget.hold`,
:meth:`PollBudget.held_for`): the Hub has said to send nothing, and a call sent sooner only
collects another 429. When the budget itself runs out of calls in a window, only the polls stop:
the Hub may still have the few calls kept back as a margin, and a teardown's pause is worth one.

Known shortcoming: the budget is per process. Several processes with one token (a triggerer and
the workers running poke-mode sensors, or two triggerers) each plan for the whole quota and only
meet through the headers, so the first calls after a window starts can overshoot; one budget
across processes would need a shared store (the Airflow database, a Redis), which this package
does not assume.

Nothing here performs I/O or imports an HTTP library or Airflow.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_spaces.hub.errors import InvalidArgumentError, RateLimitedError
from airflow_provider_spaces.hub.models import RateLimitState

__all__ = [
    "DEFAULT_QUOTA",
    "DEFAULT_WINDOW_SECONDS",
    "PollBudget",
    "PollSchedule",
    "budget_key",
    "report_to_budget",
    "shared_budget",
]

log = logging.getLogger(__name__)

# A free user's quota for the "api" bucket, which the Space runtime calls use.
DEFAULT_QUOTA = 1000
DEFAULT_WINDOW_SECONDS = 300.0
# The share of the quota the budget plans to spend steadily, and the burst it allows on top; the
# two together stay under the whole quota in any window, which leaves room for calls in flight.
DEFAULT_SHARE = 0.9
DEFAULT_BURST_SHARE = 0.05
_EPSILON = 1e-6
# The fastest the budget goes to use up what is left of a window, as a multiple of quota / window,
# so that a quiet window's leftover does not leave as one burst just before the reset.
_MAX_SPEED_UP = 2.0


def _positive(value: float, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(argument, f"must be a number above 0, not {value!r}")
    return float(value)


def _fraction(value: float, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise InvalidArgumentError(argument, f"must be a fraction in (0, 1], not {value!r}")
    return float(value)


class PollSchedule:
    """Tell one watcher how long to wait before its next read of a Space.

    The first wait in a state is ``initial``; each further read that finds the same state
    multiplies it by ``factor``, up to ``maximum``. Each wait is shortened by a random part of up
    to ``jitter`` of it, so that watchers started together drift apart and never wait longer than
    the cap.

    :param initial: seconds to wait after a read that found a new state.
    :param maximum: the longest wait, in seconds.
    :param factor: how much the wait grows per read without change.
    :param jitter: the largest share of a wait taken off at random.
    :param rng: the random source; a shared module-level one when None.
    """

    # Slots: a triggerer keeps one schedule per waiting trigger, a thousand of them or more.
    __slots__ = ("_rng", "_state", "_step", "factor", "initial", "jitter", "maximum")

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = _positive(initial, "poll_interval")
        self.maximum = _positive(maximum, "max_poll_interval")
        if self.maximum < self.initial:
            raise InvalidArgumentError(
                "max_poll_interval", f"must not be shorter than poll_interval ({initial!r}), not {maximum!r}"
            )
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise InvalidArgumentError("factor", f"must be a number of 1 or more, not {factor!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise InvalidArgumentError("jitter", f"must be a fraction in [0, 1), not {jitter!r}")
        self.factor = float(factor)
        self.jitter = float(jitter)
        # One Random per watcher would cost a few kilobytes each; a thousand watchers share this one.
        self._rng = rng if rng is not None else _SHARED_RNG
        self._state: object = _NO_STATE
        self._step = self.initial

    def next_wait(self, state: object) -> float:
        """Return the seconds to wait after a read that found ``state`` (any comparable value)."""
        if state != self._state:
            self._state = state
            self._step = self.initial
        else:
            self._step = min(self.maximum, self._step * self.factor)
        return self._step * (1.0 - self.jitter * self._rng.random())


_NO_STATE = object()
_SHARED_RNG = random.Random()


@dataclass(frozen=True)
class _Plan:
    """The budget's picture of the quota: how many calls per how many seconds."""

    quota: int
    window: float

    def rate(self, share: float) -> float:
        return share * self.quota / self.window


class PollBudget:
    """Pace the calls of one token in one process within the Hub's quota.

    A token bucket. Until the Hub's headers say otherwise, calls go at ``share`` × quota / window
    per second, plus a burst of up to ``burst_share`` × quota saved up while idle, so that any
    window of the Hub's holds at most ``share + burst_share`` of the quota.

    Once an answer's ``RateLimit`` header says how many calls are left (``r``) and when the
    window resets (``t``), that is the plan: what is left, less a margin for calls still in flight
    and less the burst in hand, is spread evenly over the time to the reset. This uses the quota
    the Hub really grants, no more: when someone else spends the same token, ``r`` falls and the
    budget slows down with it; none left stops it until the reset. A 429 (:meth:`hold`) stops it
    for the wait the Hub asked.

    :param quota: calls per window assumed until the Hub announces its own (``RateLimit-Policy``).
    :param window_seconds: the window those calls are counted in, in seconds.
    :param share: the share of the quota spent steadily while the Hub has not said what is left.
    :param burst_share: the share of the quota (or of what is left) that may go at once.
    :param clock: a monotonic clock in seconds (tests pass a fake).
    """

    def __init__(
        self,
        *,
        quota: int = DEFAULT_QUOTA,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        share: float = DEFAULT_SHARE,
        burst_share: float = DEFAULT_BURST_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
            raise InvalidArgumentError("quota", f"must be a whole number of calls, 1 or more, not {quota!r}")
        self._plan = _Plan(quota, _positive(window_seconds, "window_seconds"))
        self.share = _fraction(share, "share")
        self.burst_share = _fraction(burst_share, "burst_share")
        if self.share + self.burst_share > 1:
            raise InvalidArgumentError("burst_share", "share and burst_share together must not exceed 1")
        self._clock = clock
        self._lock = threading.Lock()
        # Held while a synchronous caller waits for its turn, so that callers go one after another.
        self._gate = threading.Lock()
        self._tokens = self._capacity()
        self._updated = clock()
        self._hold_until = 0.0
        # Until when the Hub answered 429: every call waits for this, not only the polls.
        self._limited_until = 0.0
        # What the Hub said is left, spread over its window: the pace until ``_reset_at``.
        self._hub_rate: float | None = None
        self._reset_at: float | None = None
        # Answers seen here, and the first answer of the Hub's current window (time, calls left,
        # answers seen then), to tell the calls of others on the same token from ours. Answers,
        # not calls sent: a call still in flight is in neither the Hub's count nor this one.
        self._answered = 0
        self._window_start: tuple[float, int, int] | None = None

    def __repr__(self) -> str:
        return f"PollBudget({self._plan.quota} calls per {self._plan.window:g} s, share {self.share:g})"

    # -- what the budget allows ------------------------------------------------------------------

    @property
    def quota(self) -> int:
        """Return the calls per window the budget plans with."""
        return self._plan.quota

    @property
    def window_seconds(self) -> float:
        """Return the length of the quota window the budget plans with, in seconds."""
        return self._plan.window

    @property
    def interval(self) -> float:
        """Return the gap between two calls at the planned pace, in seconds."""
        return 1.0 / self._plan.rate(self.share)

    def delay(self) -> float:
        """Return how many seconds the next call has to wait; 0 when it may go now."""
        with self._lock:
            now = self._refill()
            wait = 0.0 if self._tokens >= 1 - _EPSILON else (1 - self._tokens) / self._rate(now)
            wait = max(wait, self._hold_until - now)
            # A wait too short to move a clock that counts in seconds since boot is no wait.
            return wait if wait > _EPSILON else 0.0

    def held_for(self) -> float:
        """Return how many seconds are left of the wait a 429 asked for; 0 when none is."""
        with self._lock:
            wait = self._limited_until - self._clock()
            return wait if wait > _EPSILON else 0.0

    def take(self) -> None:
        """Count one call as sent now (the budget may go into debt, which later calls repay)."""
        with self._lock:
            self._refill()
            self._tokens -= 1

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait, with ``sleep``, until a call may go, count it, and return the seconds waited."""
        waited = 0.0
        with self._gate:
            while (wait := self.delay()) > 0:
                sleep(wait)
                waited += wait
            self.take()
        return waited

    # -- what the Hub says -----------------------------------------------------------------------

    def observe(self, state: RateLimitState | None) -> None:
        """Take in the rate-limit headers of one answer.

        A quota and window in ``RateLimit-Policy`` replace the planned ones; the calls left and
        the seconds to the reset in ``RateLimit`` set the pace until that reset.
        """
        if state is None:
            return
        with self._lock:
            now = self._refill()
            self._learn_policy(state)
            if state.remaining is None or state.reset_seconds is None:
                return
            self._answered += 1
            reset_at = self._track_reset(now, max(0.0, state.reset_seconds), state.remaining)
            left = reset_at - now
            # What others spending this token will take before the reset is not ours to spend.
            allowance = state.remaining - self._margin() - self._others_rate(now, state.remaining) * left
            if allowance <= 0:
                self._stop_until(reset_at, "no calls left in this window; polls wait")
                self._hub_rate = None
                return
            # The burst in hand counts against what is left, and is kept small next to it.
            self._tokens = min(self._tokens, self.burst_share * allowance)
            spare = allowance - max(self._tokens, 0.0)
            ceiling = _MAX_SPEED_UP * self._plan.rate(1.0)
            self._hub_rate = min(ceiling, spare / left) if left > 0 and spare > 0 else None

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the Hub answered 429 and asked to wait that long)."""
        with self._lock:
            now = self._refill()
            until = now + max(0.0, seconds)
            self._stop_until(until, "rate limited; no calls")
            self._limited_until = max(self._limited_until, until)
            self._hub_rate = None

    # -- internals -------------------------------------------------------------------------------

    def _capacity(self) -> float:
        return max(1.0, self.burst_share * self._plan.quota)

    def _margin(self) -> float:
        # Calls sent after the one whose answer is read are not in its count: one budget lets
        # out a call or two per round trip, so a handful covers them.
        return max(3.0, 0.005 * self._plan.quota)

    def _rate(self, now: float) -> float:
        if self._hub_rate is not None and self._reset_at is not None and now < self._reset_at:
            return self._hub_rate
        return self._plan.rate(self.share)

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity(), self._tokens + elapsed * self._rate(now))
        self._updated = now
        return now

    def _track_reset(self, now: float, reset_seconds: float, remaining: int) -> float:
        """Return when the Hub's window resets, as closely as whole seconds of ``t`` allow.

        ``t`` is rounded up, so every answer bounds the reset from above; within one window the
        tightest bound is kept. An answer whose lower bound lies past the known reset is from
        the next window.
        """
        bound = now + reset_seconds
        if self._reset_at is None or bound - 1.0 > self._reset_at:
            self._reset_at = bound
            self._window_start = (now, remaining, self._answered)
        else:
            self._reset_at = min(self._reset_at, bound)
        return self._reset_at

    def _others_rate(self, now: float, remaining: int) -> float:
        """Return the calls per second that others made with this token since the window began.

        The Hub's count fell by more than the answers seen here; the difference is theirs. Read
        over the whole window so far, so that answers arriving out of order blur it by a call or
        two only.
        """
        if self._window_start is None:
            return 0.0
        since, remaining_then, answered_then = self._window_start
        elapsed = now - since
        if elapsed < 0.05 * self._plan.window:
            return 0.0
        theirs = (remaining_then - remaining) - (self._answered - answered_then)
        return max(0.0, theirs) / elapsed

    def _learn_policy(self, state: RateLimitState) -> None:
        quota, window = state.quota, state.window_seconds
        if quota is None or window is None or quota < 1 or window <= 0:
            return
        plan = _Plan(quota, float(window))
        if plan != self._plan:
            log.info("Hub budget: the Hub announces %d calls per %g s for this token", quota, window)
            self._plan = plan
            self._tokens = min(self._tokens, self._capacity())

    def _stop_until(self, until: float, what: str) -> None:
        if until > self._hold_until:
            log.info("Hub budget: %s for %.1f s", what, until - self._clock())
        self._hold_until = max(self._hold_until, until)
        self._tokens = min(self._tokens, 0.0)


def budget_key(endpoint: str, token: str | None) -> str:
    """Name the budget of ``token`` on ``endpoint`` without the token: a short hash stands for it."""
    if not token:
        return f"{endpoint} anonymous"
    digest = hashlib.sha256(f"airflow-provider-spaces budget\0{token}".encode()).hexdigest()
    return f"{endpoint} token-{digest[:16]}"


_BUDGETS: dict[str, PollBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(
    endpoint: str,
    token: str | None,
    *,
    quota: int | None = None,
    window_seconds: float | None = None,
) -> PollBudget:
    """Return this process's budget for ``token`` on ``endpoint``, creating it on first use.

    ``quota`` and ``window_seconds`` set the plan of a new budget (the free user's quota when
    None); a budget that exists already keeps its plan, which the Hub's headers correct anyway.
    """
    key = budget_key(endpoint, token)
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = PollBudget(
                quota=DEFAULT_QUOTA if quota is None else quota,
                window_seconds=DEFAULT_WINDOW_SECONDS if window_seconds is None else window_seconds,
            )
            _BUDGETS[key] = budget
            log.debug("Hub budget created for %s: %r", key, budget)
        return budget


def report_to_budget(
    budget: PollBudget | None, state: RateLimitState | None, limited: RateLimitedError | None
) -> None:
    """Tell ``budget`` what one answer's rate-limit headers said and, for a 429, how long to wait."""
    if budget is None:
        return
    budget.observe(state)
    if limited is not None:
        # Without a wait in the answer, a second of silence still beats an immediate retry.
        budget.hold(limited.retry_after if limited.retry_after is not None else 1.0)
