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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from airflow_provider_spaces import __version__
from airflow_provider_spaces.hub import protocol
from airflow_provider_spaces.hub.errors import HubConnectionError, HubError
from airflow_provider_spaces.hub.exchange import HubExchange
from airflow_provider_spaces.hub.models import SpaceRuntime, WhoAmI
from airflow_provider_spaces.hub.pacing import PollBudget, budget_key, shared_budget
from airflow_provider_spaces.hub.protocol import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HubAnswer,
    HubCall,
    check_timeout,
    resolve_endpoint,
)
from airflow_provider_spaces.hub.retry import RetryPolicy, short_reason

__all__ = ["AsyncSpacesClient", "PooledClient", "pooled_client"]

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
_MAX_CONNECTIONS = 4
_POOL_LIMITS = httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS)


class AsyncSpacesClient(HubExchange):
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
    :param slots: how many requests may be in flight at once, shared by every client of ``http``;
        as many as the pool has connections when None.
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
        slots: asyncio.Semaphore | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            endpoint=endpoint,
            token=token,
            retry=retry,
            user_agent=user_agent or f"airflow-provider-spaces/{__version__} httpx/{httpx.__version__}",
            budget=budget,
            clock=clock,
            rng=rng if rng is not None else _SHARED_RNG,
        )
        self.timeout = httpx.Timeout(
            check_timeout(read_timeout, "read_timeout"),
            connect=check_timeout(connect_timeout, "connect_timeout"),
        )
        self._owns_http = http is None
        self._http = http if http is not None else new_http_client()
        self._slots = slots if slots is not None else asyncio.Semaphore(_MAX_CONNECTIONS)
        self._sleep = sleep

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

    async def get_space_runtime(
        self, space_id: str, *, paced: bool = False, turn_taken: bool = False
    ) -> SpaceRuntime:
        """Return the runtime of a Space: stage, hardware, sleep time, storage.

        :param paced: wait for this token's turn in the ``budget`` first (the reads of a wait loop).
        :param turn_taken: the caller took the first attempt's turn already (:meth:`take_turn`);
            a retry still waits for a turn of its own.
        """
        call = protocol.runtime_call(space_id)
        answer = await self._send(call, paced=paced, turn_taken=turn_taken)
        return SpaceRuntime.from_payload(
            space_id, answer.payload, endpoint=self.endpoint, request_id=answer.request_id
        )

    async def whoami(self) -> WhoAmI:
        """Return whom the token belongs to and its role."""
        return WhoAmI.from_payload((await self._send(protocol.whoami_call())).payload)

    def take_turn(self) -> Awaitable[float]:
        """Wait for this token's turn in the ``budget`` for one paced read; return the seconds waited.

        A wait loop takes its turn before it starts the read (``turn_taken=True``), so that the
        many loops queued for their turns each hold one small coroutine, not a read begun.
        Returns the awaitable itself rather than wrapping it in a coroutine of its own, which
        every queued loop would hold too.
        """
        if self.budget is None:
            return _no_wait()
        return wait_for_turn(self.budget, self._sleep)

    # -- sending --------------------------------------------------------------------------------

    async def _send(self, call: HubCall, *, paced: bool = False, turn_taken: bool = False) -> HubAnswer:
        """Send ``call``, retrying as the policy and the call's idempotency allow."""
        attempts = self._retry_loop(call)
        wait_turn = paced and not turn_taken
        while True:
            try:
                return await self._attempt(call, paced=paced, wait_turn=wait_turn)
            except HubError as error:
                delay = attempts.after_failure(error)
                if delay is None:
                    raise
            wait_turn = paced
            await self._sleep(delay)

    async def _attempt(self, call: HubCall, *, paced: bool, wait_turn: bool) -> HubAnswer:
        """Send ``call`` once (after its turn in the budget when ``wait_turn``) and read the answer."""
        if self.budget is not None and wait_turn:
            await wait_for_turn(self.budget, self._sleep)
        held = self._count_in_budget(paced=paced)
        if held > 0:
            await self._sleep(held)
        log.debug("%s %s", call.method, call.path)
        # Requests wait for a connection here, not in httpx's pool: its queue is scanned whole for
        # every request it assigns, so a thousand reads queued there cost a thousand squared steps.
        async with self._slots:
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

        return self._read(call, response.status_code, response.headers, response.content)


_SHARED_RNG = random.Random()


async def _no_wait() -> float:
    return 0.0


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
    # acquire() and release() rather than ``async with``: the context manager's own coroutine
    # would be one more frame held by every caller queued here.
    await gate.acquire()
    try:
        while (wait := budget.delay()) > 0:
            await sleep(wait)
            waited += wait
        budget.take()
    finally:
        gate.release()
    return waited


# -- one connection pool, and one client per connection setting, per event loop ------------------


@dataclass
class _Pool:
    http: httpx.AsyncClient
    users: int = 0
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(_MAX_CONNECTIONS))
    # Clients are shared too: a thousand triggers of one connection need one client, not a thousand.
    clients: dict[tuple[Any, ...], AsyncSpacesClient] = field(default_factory=dict)
    # Counted by client, not by key: a use then holds the shared client, not a key of its own.
    client_users: Counter[AsyncSpacesClient] = field(default_factory=Counter)


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
# Taken while a loop's pool is being opened, so that its first users wait for one pool together.
_OPENING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def pooled_client(
    *,
    endpoint: str | None,
    token: str | None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    retry: RetryPolicy | None = None,
    user_agent: str | None = None,
    quota: int | None = None,
    window_seconds: float | None = None,
) -> PooledClient:
    """Return a context that yields this event loop's client for these settings, on the loop's pool.

    Every user of the same endpoint, token and options on one loop gets the same client; all of
    them share the loop's pool, which opens with its first user and closes when its last one
    leaves, and the process's budget for the token. ``quota`` and ``window_seconds`` plan that
    budget when this is its first use in the process (the free user's quota when None); the
    Hub's headers correct it.
    """
    return PooledClient(
        endpoint=endpoint,
        token=token,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retry=retry,
        user_agent=user_agent,
        quota=quota,
        window_seconds=window_seconds,
    )


class PooledClient:
    """One use of an event loop's shared client: :func:`pooled_client` returns it, ``async with`` enters it.

    A small class rather than a generator-based context manager: a trigger holds its use for as
    long as it waits, hours perhaps, and a suspended generator would keep every argument and local
    of the call alive with it. Once entered, this holds the pool and the client, which every use
    shares, and nothing of its own.
    """

    __slots__ = ("_client", "_pool", "_settings")

    def __init__(self, **settings: Any) -> None:
        self._settings: dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]] | None = settings
        self._pool: _Pool | None = None
        self._client: AsyncSpacesClient | None = None

    @classmethod
    def reading(cls, read_settings: Callable[[], Awaitable[dict[str, Any]]]) -> PooledClient:
        """Return a use whose settings (:func:`pooled_client`'s keywords) are read on entry.

        For a hook, which reads its Airflow connection only once a trigger runs.
        """
        use = cls()
        use._settings = read_settings
        return use

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entered={self._pool is not None})"

    async def __aenter__(self) -> AsyncSpacesClient:
        if self._settings is None:
            raise RuntimeError("a pooled client is entered once")
        # Let go of the settings (the token among them) as soon as the client holds them.
        settings, self._settings = self._settings, None
        if callable(settings):
            settings = await settings()
        resolved = resolve_endpoint(settings["endpoint"])
        token = settings["token"]
        pool = await _pool_of(asyncio.get_running_loop())
        # The key holds the token's hash, never the token: a key may end up in a debugger or a log.
        key = (
            budget_key(resolved, token),
            settings.get("connect_timeout"),
            settings.get("read_timeout"),
            settings.get("retry"),
            settings.get("user_agent"),
        )
        pool.users += 1
        try:
            client = pool.clients.get(key)
            if client is None:
                client = pool.clients[key] = AsyncSpacesClient(
                    endpoint=resolved,
                    token=token,
                    connect_timeout=_or_default(settings.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT),
                    read_timeout=_or_default(settings.get("read_timeout"), DEFAULT_READ_TIMEOUT),
                    retry=settings.get("retry"),
                    user_agent=settings.get("user_agent"),
                    budget=shared_budget(
                        resolved,
                        token,
                        quota=settings.get("quota"),
                        window_seconds=settings.get("window_seconds"),
                    ),
                    http=pool.http,
                    slots=pool.slots,
                )
        except BaseException:
            # A bad setting: this use ends here, and closes the pool if it opened it.
            await _leave(pool, None)
            raise
        pool.client_users[client] += 1
        self._pool, self._client = pool, client
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await _leave(pool, self._client)


def _or_default(value: float | None, default: float) -> float:
    return default if value is None else value


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


async def _leave(pool: _Pool, client: AsyncSpacesClient | None) -> None:
    """Let go of one use of the pool and of ``client``; the last user of each lets it go."""
    if client is not None:
        pool.client_users[client] -= 1
        if pool.client_users[client] <= 0:
            del pool.client_users[client]
            # A loop holds a handful of clients at most: finding its key is a short walk.
            for key in [key for key, shared in pool.clients.items() if shared is client]:
                del pool.clients[key]
    pool.users -= 1
    loop = asyncio.get_running_loop()
    if pool.users == 0 and _POOLS.get(loop) is pool:
        # Forgotten before closing, so that a user arriving meanwhile opens a fresh pool.
        del _POOLS[loop]
        await pool.http.aclose()
