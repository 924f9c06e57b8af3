"""The asynchronous Hub client: the few calls a trigger makes, on httpx's ``AsyncClient``.

It sends the same :class:`~airflow_provider_spaces.hub.protocol.HubCall` objects as the
synchronous client, reads the answers with the same :func:`~airflow_provider_spaces.hub.protocol.read_answer`
(so the same errors come out), follows the same retry rules with asynchronous sleeps, and waits
for its turn in the same kind of :class:`~airflow_provider_spaces.hub.pacing.PollBudget`.

:func:`pooled_client` is what triggers use: every client it yields on one event loop shares that
loop's connection pool, and every client of one token shares the process's budget for it, so a
triggerer watching a thousand Spaces keeps a handful of connections and stays within the quota.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from airflow_provider_spaces import __version__
from airflow_provider_spaces.hub import protocol
from airflow_provider_spaces.hub.errors import HubConnectionError, HubError, RateLimitedError
from airflow_provider_spaces.hub.models import RateLimitState, SpaceRuntime, WhoAmI
from airflow_provider_spaces.hub.pacing import PollBudget, budget_key, report_to_budget, shared_budget
from airflow_provider_spaces.hub.protocol import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HubAnswer,
    HubCall,
    check_timeout,
    resolve_endpoint,
)
from airflow_provider_spaces.hub.retry import RetryLoop, RetryPolicy, parse_rate_limit, short_reason

__all__ = ["AsyncSpacesClient", "pooled_client"]

log = logging.getLogger(__name__)

# Failures that happen before a byte of the request leaves: the Hub cannot have acted on it.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

Sleep = Callable[[float], Awaitable[None]]
_POOL_LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


class AsyncSpacesClient:
    """Read Spaces' runtimes and the token's identity from a coroutine.

    :param endpoint: the Hub's base URL; ``$HF_ENDPOINT`` when unset, else https://huggingface.co.
    :param token: the Hub token sent as ``Authorization: Bearer``; None for anonymous calls.
    :param connect_timeout: seconds to wait for a connection.
    :param read_timeout: seconds to wait for the Hub to answer once connected.
    :param retry: when and how long to retry; :class:`RetryPolicy` defaults when None.
    :param user_agent: the ``User-Agent`` header; names this package when None.
    :param budget: the call budget of this token: every call counts in it, and the reads of a wait
        loop (``paced=True``) wait for their turn. None sends every call as it comes.
    :param http: an ``httpx.AsyncClient`` to send with, which the caller closes; the client makes
        (and closes) its own when None.
    :param sleep: the coroutine that waits between attempts (tests pass a fake).
    :param clock: a monotonic clock in seconds, for the retry time budget.
    :param rng: the random source of the backoff jitter.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
        budget: PollBudget | None = None,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self._token = (token or "").strip() or None
        self.timeout = httpx.Timeout(
            check_timeout(read_timeout, "read_timeout"),
            connect=check_timeout(connect_timeout, "connect_timeout"),
        )
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent or f"airflow-provider-spaces/{__version__} httpx/{httpx.__version__}"
        self.budget = budget
        self._owns_http = http is None
        self._http = http if http is not None else new_http_client()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else _SHARED_RNG
        self._rate_limit: RateLimitState | None = None

    def __repr__(self) -> str:
        return f"AsyncSpacesClient(endpoint={self.endpoint!r}, authenticated={self.authenticated})"

    @property
    def authenticated(self) -> bool:
        """Tell whether calls carry a token."""
        return self._token is not None

    @property
    def rate_limit(self) -> RateLimitState | None:
        """Return the rate-limit state from the latest answer that carried the headers."""
        return self._rate_limit

    async def aclose(self) -> None:
        """Release the connections, unless the ``httpx.AsyncClient`` was handed in."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSpacesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- calls ----------------------------------------------------------------------------------

    async def get_space_runtime(self, space_id: str, *, paced: bool = False) -> SpaceRuntime:
        """Return the runtime of a Space: stage, hardware, sleep time, storage.

        :param paced: wait for this token's turn in the ``budget`` first (the reads of a wait loop).
        """
        call = protocol.runtime_call(space_id)
        answer = await self._send(call, paced=paced)
        return SpaceRuntime.from_payload(
            space_id, answer.payload, endpoint=self.endpoint, request_id=answer.request_id
        )

    async def whoami(self) -> WhoAmI:
        """Return whom the token belongs to and its role."""
        return WhoAmI.from_payload((await self._send(protocol.whoami_call())).payload)

    # -- sending --------------------------------------------------------------------------------

    async def _send(self, call: HubCall, *, paced: bool = False) -> HubAnswer:
        """Send ``call``, retrying as the policy and the call's idempotency allow."""
        attempts = RetryLoop(
            self.retry,
            action=call.action,
            space_id=call.space_id,
            idempotent=call.idempotent,
            clock=self._clock,
            rng=self._rng,
        )
        while True:
            try:
                return await self._attempt(call, paced=paced)
            except HubError as error:
                delay = attempts.after_failure(error)
                if delay is None:
                    raise
            await self._sleep(delay)

    async def _attempt(self, call: HubCall, *, paced: bool) -> HubAnswer:
        """Send ``call`` once (in its turn of the budget when ``paced``) and read the whole answer."""
        if self.budget is not None:
            if paced:
                await wait_for_turn(self.budget, self._sleep)
            else:
                self.budget.take()
        log.debug("%s %s", call.method, call.path)
        try:
            response = await self._http.request(
                call.method,
                self.endpoint + call.path,
                params=call.params,
                json=call.body,
                headers=self._headers(),
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            raise _connection_error(call, error) from None

        log.debug(
            "%s %s -> %d (request id %s)",
            call.method,
            call.path,
            response.status_code,
            response.headers.get("X-Request-Id"),
        )
        state = parse_rate_limit(response.headers)
        if state is not None:
            self._rate_limit = state
        try:
            answer = protocol.read_answer(
                response.status_code,
                response.headers,
                response.content,
                call=call,
                authenticated=self.authenticated,
                redact=(self._token,) if self._token else (),
            )
        except RateLimitedError as error:
            report_to_budget(self.budget, state, error)
            raise
        report_to_budget(self.budget, state, None)
        return answer

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers


_SHARED_RNG = random.Random()


def new_http_client() -> httpx.AsyncClient:
    """Return an ``httpx.AsyncClient`` set up as the Hub clients need it.

    Proxy and CA settings come from the environment, read once, as for the synchronous client;
    redirects are followed, as ``requests`` does. The pool is small on purpose: the budget lets
    calls out one after another, and every idle connection kept costs a check on each request.
    """
    return httpx.AsyncClient(follow_redirects=True, trust_env=True, limits=_POOL_LIMITS)


def _connection_error(call: HubCall, error: httpx.HTTPError) -> HubConnectionError:
    """Turn a transport failure into a :class:`HubConnectionError` that says whether the Hub acted."""
    reached = not isinstance(error, _NOT_SENT)
    if isinstance(error, httpx.ReadTimeout):
        what = "the Hub did not answer within the read timeout"
    elif reached:
        what = "the connection broke before the whole answer arrived"
    else:
        what = "could not connect to the Hub"
    detail = short_reason(error) or type(error).__name__
    return HubConnectionError(
        f"{what} ({detail})", may_have_acted=reached, space_id=call.space_id, action=call.action
    )


# -- turns in the budget, one event loop at a time ---------------------------------------------

# One lock per budget and event loop: the callers of one loop queue on it in the order they came
# (asyncio's locks are fair), so that a thousand watchers take turns rather than race each other.
_GATES: weakref.WeakKeyDictionary[
    PollBudget, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
]
_GATES = weakref.WeakKeyDictionary()


async def wait_for_turn(budget: PollBudget, sleep: Sleep = asyncio.sleep) -> float:
    """Wait until ``budget`` lets one more call go, count it, and return the seconds waited."""
    loop = asyncio.get_running_loop()
    gates = _GATES.setdefault(budget, weakref.WeakKeyDictionary())
    gate = gates.get(loop)
    if gate is None:
        gate = gates[loop] = asyncio.Lock()

    waited = 0.0
    async with gate:
        while (wait := budget.delay()) > 0:
            await sleep(wait)
            waited += wait
        budget.take()
    return waited


# -- one connection pool, and one client per connection setting, per event loop ------------------


@dataclass
class _Pool:
    http: httpx.AsyncClient
    users: int = 0
    # Clients are shared too: a thousand triggers of one connection need one client, not a thousand.
    clients: dict[tuple[Any, ...], AsyncSpacesClient] = field(default_factory=dict)
    client_users: Counter[tuple[Any, ...]] = field(default_factory=Counter)


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
# Taken while a loop's pool is being opened, so that its first users wait for one pool together.
_OPENING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def pooled_client(
    *,
    endpoint: str | None,
    token: str | None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    retry: RetryPolicy | None = None,
    user_agent: str | None = None,
    quota: int | None = None,
    window_seconds: float | None = None,
) -> AsyncIterator[AsyncSpacesClient]:
    """Yield this event loop's client for these settings, on the loop's one connection pool.

    Every user of the same endpoint, token and options on one loop gets the same client; all of
    them share the loop's pool, which opens with its first user and closes when its last one
    leaves, and the process's budget for the token. ``quota`` and ``window_seconds`` plan that
    budget when this is its first use in the process (the free user's quota when None); the
    Hub's headers correct it.
    """
    resolved = resolve_endpoint(endpoint)
    loop = asyncio.get_running_loop()
    pool = await _pool_of(loop)
    # The key holds the token's hash, never the token: a key may end up in a debugger or a log.
    key = (budget_key(resolved, token), connect_timeout, read_timeout, retry, user_agent)
    pool.users += 1
    pool.client_users[key] += 1
    try:
        client = pool.clients.get(key)
        if client is None:
            client = pool.clients[key] = AsyncSpacesClient(
                endpoint=resolved,
                token=token,
                connect_timeout=DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
                read_timeout=DEFAULT_READ_TIMEOUT if read_timeout is None else read_timeout,
                retry=retry,
                user_agent=user_agent,
                budget=shared_budget(resolved, token, quota=quota, window_seconds=window_seconds),
                http=pool.http,
            )
        yield client
    finally:
        await _leave(loop, pool, key)


async def _pool_of(loop: asyncio.AbstractEventLoop) -> _Pool:
    """Return the loop's pool, opening it when it has none."""
    pool = _POOLS.get(loop)
    if pool is not None:
        return pool
    opening = _OPENING.setdefault(loop, asyncio.Lock())
    async with opening:
        pool = _POOLS.get(loop)
        if pool is None:
            # Made in a thread: loading the CA bundle blocks for tens of milliseconds, which every
            # other coroutine on the loop (a triggerer's other triggers) would wait for.
            pool = _POOLS[loop] = _Pool(await asyncio.to_thread(new_http_client))
        return pool


async def _leave(loop: asyncio.AbstractEventLoop, pool: _Pool, key: tuple[Any, ...]) -> None:
    """Let go of one use of a pooled client; the last user of the pool closes it."""
    pool.client_users[key] -= 1
    if pool.client_users[key] <= 0:
        del pool.client_users[key]
        pool.clients.pop(key, None)
    pool.users -= 1
    if pool.users == 0 and _POOLS.get(loop) is pool:
        # Forgotten before closing, so that a user arriving meanwhile opens a fresh pool.
        del _POOLS[loop]
        await pool.http.aclose()
