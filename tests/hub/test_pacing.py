"""Poll budgeting: per-Space backoff, and one budget per token that keeps many watchers under the quota.

Every budget here runs on a fake clock that only moves when a caller sleeps, so pacing over
simulated hours takes milliseconds and nothing is timed for real.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from airflow_provider_spaces.hub import InvalidArgumentError, RateLimitedError, RateLimitState, RetryPolicy
from airflow_provider_spaces.hub.pacing import (
    DEFAULT_QUOTA,
    DEFAULT_WINDOW_SECONDS,
    PollBudget,
    PollSchedule,
    budget_key,
    shared_budget,
)

TOKEN = "hf_pacing_test_token_77c1d0"


class Clock:
    """A monotonic clock that moves only when told to, or when a caller sleeps on it."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def budget(clock: Clock, **options: Any) -> PollBudget:
    return PollBudget(clock=clock, **options)


def policy(remaining: int | None = None, reset: float | None = None, **limits: Any) -> RateLimitState:
    return RateLimitState(
        remaining=remaining,
        reset_seconds=reset,
        quota=limits.get("quota"),
        window_seconds=limits.get("window"),
        bucket="api",
    )


# -- the schedule of one watcher ------------------------------------------------------------------


def test_a_space_that_stays_in_one_stage_is_polled_less_and_less_often_up_to_the_cap() -> None:
    schedule = PollSchedule(10, 60, factor=2, jitter=0)

    waits = [schedule.next_wait("BUILDING") for _ in range(6)]

    assert waits == [10, 20, 40, 60, 60, 60]


def test_a_change_of_stage_brings_the_poll_interval_back_to_the_start() -> None:
    schedule = PollSchedule(10, 60, factor=2, jitter=0)
    for _ in range(4):
        schedule.next_wait("BUILDING")

    assert schedule.next_wait("APP_STARTING") == 10
    assert schedule.next_wait("APP_STARTING") == 20


def test_jitter_only_shortens_a_wait_so_the_cap_always_holds() -> None:
    schedule = PollSchedule(10, 60, factor=2, jitter=0.2, rng=random.Random(7))

    waits = [schedule.next_wait("BUILDING") for _ in range(200)]

    assert all(48 <= wait <= 60 for wait in waits[3:])
    assert len({round(wait, 6) for wait in waits}) > 100


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"initial": 0, "maximum": 60}, "poll_interval"),
        ({"initial": 10, "maximum": -1}, "max_poll_interval"),
        ({"initial": 30, "maximum": 10}, "max_poll_interval"),
        ({"initial": 10, "maximum": 60, "factor": 0.5}, "factor"),
        ({"initial": 10, "maximum": 60, "jitter": 1.0}, "jitter"),
    ],
    ids=["zero-interval", "negative-cap", "cap-below-interval", "shrinking-factor", "full-jitter"],
)
def test_a_schedule_that_cannot_work_is_refused_naming_the_argument(
    options: dict[str, Any], argument: str
) -> None:
    initial, maximum = options.pop("initial"), options.pop("maximum")

    with pytest.raises(InvalidArgumentError, match=f"Invalid {argument}:"):
        PollSchedule(initial, maximum, **options)


# -- the budget of one token ----------------------------------------------------------------------


def test_a_burst_goes_at_once_and_then_calls_are_spaced_at_the_safe_share_of_the_quota(clock: Clock) -> None:
    paced = budget(clock, quota=1000, window_seconds=300, share=0.9, burst_share=0.05)

    waits = [paced.acquire(clock.sleep) for _ in range(60)]

    assert waits[:50] == [0.0] * 50
    assert waits[50:] == pytest.approx([300 / 900] * 10)
    assert paced.interval == pytest.approx(300 / 900)


def test_a_thousand_watchers_never_spend_more_than_the_quota_in_any_window_of_the_hub(clock: Clock) -> None:
    paced = budget(clock)
    sent: list[float] = []

    # Far more demand than the quota allows, for an hour: every watcher asks again at once.
    while clock.now < 5000 + 3600:
        paced.acquire(clock.sleep)
        sent.append(clock.now)

    for offset in (0.0, 37.5, 150.0):
        per_window = Counter(
            int((at - 5000 - offset) // DEFAULT_WINDOW_SECONDS) for at in sent if at >= 5000 + offset
        )
        assert max(per_window.values()) <= 0.95 * DEFAULT_QUOTA
    assert len(sent) == pytest.approx(0.9 * DEFAULT_QUOTA * 12 + 50, abs=2)


def test_the_quota_and_window_the_hub_announces_replace_the_planned_ones(clock: Clock) -> None:
    paced = budget(clock)

    paced.observe(policy(remaining=2400, reset=290, quota=2500, window=300))

    assert (paced.quota, paced.window_seconds) == (2500, 300)
    assert paced.interval == pytest.approx(300 / (0.9 * 2500))


def test_no_calls_left_stops_the_budget_until_the_window_resets(clock: Clock) -> None:
    paced = budget(clock)

    paced.observe(policy(remaining=0, reset=42))

    assert paced.delay() == pytest.approx(42)
    assert paced.acquire(clock.sleep) >= 42


def calls_before(paced: PollBudget, clock: Clock, until: float) -> int:
    """Return how many calls hungry watchers get through ``paced`` before the clock reaches ``until``."""
    sent = 0
    while True:
        paced.acquire(clock.sleep)
        if clock.now >= until:
            return sent
        sent += 1


def test_fewer_calls_left_than_planned_are_spread_until_the_reset_and_never_overspent(clock: Clock) -> None:
    # Someone else spends this token too: 60 calls left for 120 s, where the plan would send ~400.
    paced = budget(clock)

    paced.observe(policy(remaining=60, reset=120))
    sent = calls_before(paced, clock, until=clock.now + 120)

    assert 50 <= sent <= 60 - 5  # all that is left but the margin for calls in flight
    assert max(clock.slept) == pytest.approx(120 / (55 - 55 * 0.05))  # evenly spread, not a burst and a stop


def test_a_fresh_window_lets_the_budget_spend_nearly_all_the_hub_grants(clock: Clock) -> None:
    paced = budget(clock)

    paced.observe(policy(remaining=999, reset=300, quota=1000, window=300))
    sent = calls_before(paced, clock, until=clock.now + 300)

    assert 0.98 * 1000 <= sent <= 1000 - 5


def test_the_reset_is_known_to_the_hundredth_although_the_hub_rounds_it_to_seconds(clock: Clock) -> None:
    # The window really resets at 10.0 s from here; the Hub rounds the seconds left up.
    start = clock.now
    paced = budget(clock)
    clock.now = start + 8.05
    paced.observe(policy(remaining=30, reset=2))  # 1.95 s left, said as 2
    clock.now = start + 9.5
    paced.observe(policy(remaining=0, reset=1))  # 0.5 s left, said as 1

    assert paced.delay() == pytest.approx(0.55)

    clock.now = start + 10.2
    paced.observe(policy(remaining=999, reset=300))  # the next window

    assert paced.delay() == 0


class FixedWindowHub:
    """Count calls in fixed windows as the Hub does, refuse those over the quota, answer the headers."""

    def __init__(self, clock: Clock, quota: int, window: float) -> None:
        self.clock, self.quota, self.window = clock, quota, window
        self.start: float | None = None
        self.used: Counter[float] = Counter()
        self.ours: Counter[float] = Counter()
        self.refused: Counter[str] = Counter()

    def call(self, caller: str) -> RateLimitState:
        now = self.clock.now
        if self.start is None or now >= self.start + self.window:
            self.start = now
        self.used[self.start] += 1
        if self.used[self.start] > self.quota:
            self.refused[caller] += 1
        elif caller == "ours":
            self.ours[self.start] += 1
        left = self.start + self.window - now
        remaining = max(0, self.quota - self.used[self.start])
        return policy(
            remaining=remaining, reset=max(1, math.ceil(left)), quota=self.quota, window=self.window
        )


@pytest.mark.parametrize("other_share", [0.0, 0.3, 0.6], ids=["alone", "sharing-the-token", "mostly-theirs"])
def test_hungry_watchers_fed_the_hubs_headers_spend_what_is_left_and_collect_no_429(
    clock: Clock, other_share: float
) -> None:
    hub = FixedWindowHub(clock, quota=1000, window=300)
    paced = budget(clock)
    others, last = 0.0, clock.now

    while clock.now < 5000 + 3 * 3600:
        paced.acquire(clock.sleep)
        # Another process spends the same token at a steady pace, unseen but in the Hub's count.
        others += other_share * 1000 / 300 * (clock.now - last)
        last = clock.now
        while others >= 1:
            others -= 1
            hub.call("others")
        paced.observe(hub.call("ours"))

    assert hub.refused["ours"] == 0
    ours = list(hub.ours.values())[:-1]
    assert min(ours) >= (0.97 - other_share) * 1000


def test_calls_in_flight_when_a_window_starts_are_not_taken_for_someone_elses(clock: Clock) -> None:
    paced = budget(clock)
    for _ in range(50):
        paced.take()  # a burst, all sent before the first answer comes back
    for remaining in range(999, 949, -1):
        paced.observe(policy(remaining=remaining, reset=300, quota=1000, window=300))

    clock.now += 20
    paced.observe(policy(remaining=949, reset=280, quota=1000, window=300))
    for _ in range(47):
        paced.take()

    # The pace is what is left over the time left (about 3.2 calls a second), not a fraction of it.
    assert paced.delay() < 0.5


def test_a_429_holds_every_call_for_the_wait_the_hub_asked(clock: Clock) -> None:
    paced = budget(clock)

    paced.hold(30)

    assert paced.delay() == pytest.approx(30)
    clock.now += 31
    assert paced.acquire(clock.sleep) < 1


def test_calls_that_do_not_wait_leave_a_debt_that_the_polls_after_them_repay(clock: Clock) -> None:
    paced = budget(clock, quota=100, window_seconds=100, share=0.5, burst_share=0.1)
    for _ in range(10):
        paced.take()  # a task's writes: sent at once, counted all the same

    for _ in range(5):
        paced.take()

    # Five calls into debt at one call per two seconds: the next poll waits for six tokens.
    assert paced.delay() == pytest.approx(12)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"quota": 0}, "quota"),
        ({"quota": 10.5}, "quota"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"share": 0}, "share"),
        ({"share": 0.9, "burst_share": 0.2}, "burst_share"),
    ],
    ids=["no-quota", "fractional-quota", "empty-window", "zero-share", "more-than-the-quota"],
)
def test_a_budget_that_cannot_work_is_refused_naming_the_argument(
    options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=f"Invalid {argument}:"):
        PollBudget(**options)


# -- one budget per token and endpoint ------------------------------------------------------------


def test_clients_of_one_token_share_one_budget_and_other_tokens_get_their_own() -> None:
    endpoint = "http://127.0.0.1:9/pacing-share"

    first = shared_budget(endpoint, TOKEN)

    assert shared_budget(endpoint, TOKEN) is first
    assert shared_budget(endpoint, TOKEN + "x") is not first
    assert shared_budget(endpoint + "-other", TOKEN) is not first


def test_a_new_budget_takes_the_quota_from_the_connection() -> None:
    made = shared_budget("http://127.0.0.1:9/pacing-pro", TOKEN, quota=2500, window_seconds=300)

    assert (made.quota, made.window_seconds) == (2500, 300)


def test_the_budget_key_never_holds_the_token() -> None:
    key = budget_key("http://127.0.0.1:9", TOKEN)

    assert TOKEN not in key
    assert TOKEN[3:12] not in key
    assert key.startswith("http://127.0.0.1:9 token-")
    assert budget_key("http://127.0.0.1:9", None) == "http://127.0.0.1:9 anonymous"


# -- the synchronous client and its budget ---------------------------------------------------------

RUNTIME_PATH = "/api/spaces/demo/app/runtime"
LIMIT_HEADERS = {"RateLimit": '"api";r=0;t=40', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'}


def test_a_paced_read_waits_for_its_turn_and_a_plain_call_does_not(
    hub: Any, make_client: Any, fake_time: Any, runtime: Any
) -> None:
    paced = PollBudget(quota=10, window_seconds=60, share=0.5, burst_share=0.1, clock=fake_time.clock)
    client = make_client(budget=paced)
    hub.always("GET", RUNTIME_PATH, runtime("BUILDING"))

    client.get_space_runtime("demo/app", paced=True)
    client.get_space_runtime("demo/app")
    client.get_space_runtime("demo/app", paced=True)

    # One call per 12 s: the burst of one went first, the plain read ran into debt, and the last
    # poll waited for two calls' worth.
    assert fake_time.sleeps == pytest.approx([24.0])


def test_the_client_tells_its_budget_what_the_hubs_headers_say(
    hub: Any, make_client: Any, fake_time: Any, runtime: Any
) -> None:
    paced = PollBudget(clock=fake_time.clock)
    client = make_client(budget=paced)
    hub.reply("GET", RUNTIME_PATH, runtime("BUILDING"), headers=LIMIT_HEADERS)

    client.get_space_runtime("demo/app")

    assert (paced.quota, paced.window_seconds) == (500, 300)
    assert paced.delay() == pytest.approx(40)


def test_a_429_holds_the_budget_so_that_other_watchers_wait_too(
    hub: Any, make_client: Any, fake_time: Any, runtime: Any
) -> None:
    paced = PollBudget(clock=fake_time.clock)
    first = make_client(budget=paced, retry=RetryPolicy.no_retries())
    second = make_client(budget=paced)
    hub.reply("GET", RUNTIME_PATH, {"error": "slow down"}, status=429, headers={"Retry-After": "25"})
    hub.always("GET", RUNTIME_PATH, runtime("RUNNING"))

    with pytest.raises(RateLimitedError):
        first.get_space_runtime("demo/app", paced=True)

    assert second.get_space_runtime("demo/app", paced=True).stage == "RUNNING"
    assert fake_time.sleeps == pytest.approx([25.0])
