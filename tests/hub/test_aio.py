"""The asynchronous client against a real HTTP server on 127.0.0.1: same answers, same errors, same retries.

Each test runs its coroutine with ``asyncio.run``; retries and budget waits go through a fake
sleep on the suite's fake clock, so nothing waits for real.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from airflow_provider_spaces.hub import (
    HubConnectionError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    SpaceStage,
)
from airflow_provider_spaces.hub.aio import AsyncSpacesClient, pooled_client, wait_for_turn
from airflow_provider_spaces.hub.pacing import PollBudget

RUNTIME_PATH = "/api/spaces/demo/app/runtime"
T = TypeVar("T")


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


@pytest.fixture
def make_async(
    hub: Any, fake_time: Any, token: str, retry_policy: RetryPolicy
) -> Callable[..., AsyncSpacesClient]:
    """Build clients aimed at the scripted Hub; each test closes them inside its own event loop."""

    async def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)

    def build(**overrides: Any) -> AsyncSpacesClient:
        options: dict[str, Any] = {
            "endpoint": hub.url,
            "token": token,
            "connect_timeout": 2.0,
            "read_timeout": 2.0,
            "retry": retry_policy,
            "sleep": sleep,
            "clock": fake_time.clock,
        }
        options.update(overrides)
        return AsyncSpacesClient(**options)

    return build


def test_a_runtime_read_returns_the_same_model_as_the_sync_client(
    hub: Any, make_async: Any, runtime: Any, token: str
) -> None:
    hub.reply("GET", RUNTIME_PATH, runtime("APP_STARTING", "a10g-large", requested="a10g-large"))

    async def read() -> Any:
        async with make_async() as client:
            return await client.get_space_runtime("demo/app")

    read_back = run(read())

    assert read_back.stage is SpaceStage.APP_STARTING
    assert (read_back.hardware, read_back.requested_hardware) == ("a10g-large", "a10g-large")
    assert read_back.request_id == "req-1"
    assert read_back.url == f"{hub.url}/spaces/demo/app"
    [request] = hub.calls()
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert request.headers["User-Agent"].startswith("airflow-provider-spaces/")


def test_whoami_reads_the_tokens_owner(hub: Any, make_async: Any) -> None:
    hub.reply("GET", "/api/whoami-v2", {"name": "demo", "auth": {"accessToken": {"role": "write"}}})

    async def ask() -> Any:
        async with make_async() as client:
            return await client.whoami()

    assert run(ask()).name == "demo"


def test_a_hub_error_is_the_same_error_the_sync_client_raises(hub: Any, make_async: Any, token: str) -> None:
    hub.reply(
        "GET",
        RUNTIME_PATH,
        {"error": "Repository not found"},
        status=404,
        headers={"X-Error-Code": "RepoNotFound"},
    )

    async def read() -> Any:
        async with make_async() as client:
            return await client.get_space_runtime("demo/app")

    with pytest.raises(
        NotFoundError, match=r"read the runtime of Space demo/app.*Repository not found"
    ) as raised:
        run(read())

    assert raised.value.request_id == "req-1"
    assert token not in str(raised.value)
    assert len(hub.calls()) == 1  # final: not repeated


def test_a_429_is_retried_after_the_wait_the_hub_asked(
    hub: Any, make_async: Any, fake_time: Any, runtime: Any
) -> None:
    hub.reply("GET", RUNTIME_PATH, {"error": "Too many requests"}, status=429, headers={"Retry-After": "7"})
    hub.reply("GET", RUNTIME_PATH, runtime("RUNNING"))

    async def read() -> Any:
        async with make_async() as client:
            return await client.get_space_runtime("demo/app")

    assert run(read()).stage == "RUNNING"
    assert fake_time.sleeps[0] >= 7
    assert len(hub.calls()) == 2


def test_retries_give_up_with_the_attempt_count_in_the_message(hub: Any, make_async: Any) -> None:
    hub.always("GET", RUNTIME_PATH, {"error": "Too many requests"}, status=429, headers={"Retry-After": "1"})

    async def read() -> Any:
        async with make_async() as client:
            return await client.get_space_runtime("demo/app")

    with pytest.raises(RateLimitedError, match="Gave up after 4 attempts"):
        run(read())


def test_a_refused_connection_says_the_hub_cannot_have_acted(fake_time: Any, make_async: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def read() -> Any:
        async with make_async(
            endpoint=f"http://127.0.0.1:{closed_port}", retry=RetryPolicy.no_retries()
        ) as client:
            return await client.get_space_runtime("demo/app")

    with pytest.raises(HubConnectionError, match="could not connect to the Hub") as raised:
        run(read())

    assert raised.value.may_have_acted is False


def test_a_read_timeout_says_the_hub_may_have_acted(hub: Any, make_async: Any, runtime: Any) -> None:
    hub.reply("GET", RUNTIME_PATH, runtime(), delay=1.0)

    async def read() -> Any:
        async with make_async(read_timeout=0.2, retry=RetryPolicy.no_retries()) as client:
            return await client.get_space_runtime("demo/app")

    with pytest.raises(HubConnectionError, match="did not answer within the read timeout") as raised:
        run(read())

    assert raised.value.may_have_acted is True


def test_the_token_never_reaches_a_log_line(
    hub: Any, make_async: Any, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub.reply("GET", RUNTIME_PATH, {"error": f"bad token {token}"}, status=403)

    async def read() -> Any:
        async with make_async() as client:
            return await client.get_space_runtime("demo/app")

    with caplog.at_level(logging.DEBUG, logger="airflow_provider_spaces"):
        with pytest.raises(PermissionDeniedError) as raised:
            run(read())

    assert token not in caplog.text
    assert token not in str(raised.value)
    assert "GET /api/spaces/demo/app/runtime -> 403" in caplog.text


# -- the budget, from a coroutine ------------------------------------------------------------------


def test_paced_reads_wait_their_turn_and_report_the_headers(
    hub: Any, make_async: Any, fake_time: Any, runtime: Any
) -> None:
    paced = PollBudget(quota=10, window_seconds=60, share=0.5, burst_share=0.1, clock=fake_time.clock)
    hub.always(
        "GET",
        RUNTIME_PATH,
        runtime("BUILDING"),
        headers={"RateLimit": '"api";r=8;t=60', "RateLimit-Policy": '"fixed window";"api";q=10;w=60'},
    )

    async def read_three() -> None:
        async with make_async(budget=paced) as client:
            for _ in range(3):
                await client.get_space_runtime("demo/app", paced=True)

    run(read_three())

    assert fake_time.sleeps == pytest.approx([12.0, 12.0])


def test_watchers_on_one_loop_take_turns_in_the_order_they_asked(fake_time: Any) -> None:
    paced = PollBudget(quota=10, window_seconds=9, share=0.9, burst_share=0.1, clock=fake_time.clock)
    order: list[int] = []

    async def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)
        await asyncio.sleep(0)  # let the others run, as a real sleep would

    async def watcher(number: int) -> None:
        await wait_for_turn(paced, sleep)
        order.append(number)

    async def everyone() -> None:
        await asyncio.gather(*(watcher(number) for number in range(20)))

    run(everyone())

    assert order == list(range(20))
    assert fake_time.now - 1000.0 == pytest.approx(19.0)


class CountingBudget(PollBudget):
    """A budget that counts the calls it lets go."""

    taken = 0

    def take(self) -> None:
        self.taken += 1
        super().take()


@pytest.mark.parametrize(("answers", "counted"), [([200], 1), ([503, 200], 2)], ids=["read", "retried"])
def test_a_turn_taken_before_the_read_counts_once_and_a_retry_waits_for_another(
    hub: Any, make_async: Any, fake_time: Any, runtime: Any, answers: list[int], counted: int
) -> None:
    turns = CountingBudget(clock=fake_time.clock)
    for status in answers:
        hub.reply(
            "GET", RUNTIME_PATH, runtime("RUNNING") if status == 200 else {"error": "busy"}, status=status
        )

    async def read() -> str:
        async with make_async(budget=turns) as client:
            await client.take_turn()
            return str((await client.get_space_runtime("demo/app", paced=True, turn_taken=True)).stage)

    assert run(read()) == "RUNNING"
    assert len(hub.calls()) == len(answers)
    assert turns.taken == counted


def test_a_client_without_a_budget_takes_its_turn_at_once(make_async: Any) -> None:
    async def turn() -> float:
        async with make_async() as client:
            return await client.take_turn()

    assert run(turn()) == 0.0


def test_a_client_redacts_its_token_from_any_text(make_async: Any, token: str) -> None:
    async def both() -> tuple[str, str]:
        async with make_async() as signed, make_async(token=None) as anonymous:
            return signed.redact(f"got {token}!"), anonymous.redact(f"got {token}!")

    assert run(both()) == ("got ***!", f"got {token}!")


def test_a_pooled_client_refused_for_a_bad_setting_leaves_no_user_behind(hub: Any, token: str) -> None:
    async def main() -> Any:
        async with pooled_client(endpoint=hub.url, token=token) as first:
            with pytest.raises(ValueError, match="read_timeout"):
                async with pooled_client(endpoint=hub.url, token=token, read_timeout=-1):
                    pass
            pool = first._http
        return pool

    # Had the refused use stayed counted, its pool would still be open after the last real user.
    assert run(main()).is_closed


def test_a_pooled_client_is_entered_once(hub: Any, token: str) -> None:
    async def twice() -> None:
        use = pooled_client(endpoint=hub.url, token=token)
        async with use:
            with pytest.raises(RuntimeError, match="entered once"):
                async with use:
                    pass

    run(twice())


def test_pooled_clients_share_one_connection_pool_per_loop_and_close_it_with_the_last(
    hub: Any, token: str, runtime: Any
) -> None:
    hub.always("GET", RUNTIME_PATH, runtime())

    async def two_watchers() -> tuple[bool, bool, Any]:
        async with pooled_client(endpoint=hub.url, token=token) as first:
            async with pooled_client(endpoint=hub.url, token=token) as second:
                same_pool = first._http is second._http
                same_budget = first.budget is second.budget
                await first.get_space_runtime("demo/app", paced=True)
                await second.get_space_runtime("demo/app", paced=True)
            still_open = not first._http.is_closed
        return same_pool and same_budget, still_open, first._http

    shared, open_while_one_remains, pool = run(two_watchers())

    assert shared
    assert open_while_one_remains
    assert pool.is_closed


def test_a_pooled_client_starts_from_the_quota_of_the_connection(hub: Any) -> None:
    async def make() -> PollBudget | None:
        async with pooled_client(
            endpoint=hub.url, token="hf_pooled_pro_token", quota=2500, window_seconds=300
        ) as client:
            return client.budget

    made = run(make())

    assert made is not None
    assert (made.quota, made.window_seconds) == (2500, 300)


def test_clients_sharing_slots_keep_at_most_that_many_requests_in_flight():
    import httpx

    in_flight, most = 0, 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"stage": "RUNNING"})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            slots = asyncio.Semaphore(3)
            clients = [
                AsyncSpacesClient(endpoint="http://127.0.0.1:9", token="hf_x", http=http, slots=slots)
                for _ in range(2)
            ]
            runtimes = await asyncio.gather(
                *(clients[i % 2].get_space_runtime(f"demo/app{i}") for i in range(200))
            )
        assert {str(runtime.stage) for runtime in runtimes} == {"RUNNING"}

    asyncio.run(main())

    assert most == 3


def test_pooled_clients_of_other_settings_share_the_pools_slots(hub, token):
    async def main() -> bool:
        async with pooled_client(endpoint=hub.url, token=token, user_agent="one") as first:
            async with pooled_client(endpoint=hub.url, token=token, user_agent="two") as second:
                return first is not second and first._slots is second._slots

    assert asyncio.run(main())


def test_a_plain_call_from_a_coroutine_waits_out_a_429_without_a_wait(
    hub: Any, make_async: Any, fake_time: Any, runtime: Any
) -> None:
    paced = PollBudget(clock=fake_time.clock)
    hub.reply("GET", RUNTIME_PATH, {"error": "slow down"}, status=429)
    hub.reply("GET", RUNTIME_PATH, runtime("RUNNING"))

    async def read() -> str:
        async with make_async(budget=paced) as client:
            return str((await client.get_space_runtime("demo/app")).stage)

    assert run(read()) == "RUNNING"
    assert fake_time.sleeps == pytest.approx([1.0])
