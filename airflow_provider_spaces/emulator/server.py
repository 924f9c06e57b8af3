"""``HubEmulator``: the emulated Hub served on 127.0.0.1 from a background thread.

Starlette and uvicorn are imported in :meth:`HubEmulator.start`, so that importing this module (and
the package) stays cheap for pytest plugins and DAG files.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_spaces.emulator.clock import EmulatorClock
from airflow_provider_spaces.emulator.core import (
    DEFAULT_LOG_SIZE,
    DEFAULT_QUOTA,
    DEFAULT_QUOTA_WINDOW,
    EmulatedHub,
)
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class HubEmulator:
    """A local Hugging Face Hub for Spaces, on a clock that can run faster than real time.

    Use it as a context manager; it listens on ``host`` (127.0.0.1 by default) on a free port::

        with HubEmulator(speed=60) as hub:
            hub.add_space("demo/app", hardware="cpu-basic")
            requests.get(f"{hub.url}/api/spaces/demo/app/runtime",
                         headers={"Authorization": f"Bearer {hub.write_token}"})

    :param speed: emulated seconds per real second (60 turns a 30 s build into half a second).
    :param host: address to listen on; keep the default loopback address.
    :param port: port to listen on; 0 picks a free one.
    :param quota: calls allowed per token in each fixed window.
    :param quota_window: the window's length in emulated seconds.
    :param seed_demo: add the demo Spaces at start (see ``EmulatedHub.seed_demo``).
    :param write_token: value of the seeded write token (random by default).
    :param read_token: value of the seeded read token (random by default).
    :param log_size: how many requests the request log keeps (the oldest are dropped).
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        quota: int = DEFAULT_QUOTA,
        quota_window: int = DEFAULT_QUOTA_WINDOW,
        seed_demo: bool = False,
        write_token: str | None = None,
        read_token: str | None = None,
        log_size: int = DEFAULT_LOG_SIZE,
    ) -> None:
        self.hub = EmulatedHub(
            clock=EmulatorClock(speed),
            write_token=write_token,
            read_token=read_token,
            quota=quota,
            quota_window=quota_window,
            log_size=log_size,
        )
        self._host = host
        self._port = port
        self._seed_demo = seed_demo
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"HubEmulator({state}, speed={self.hub.clock.speed})"

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> HubEmulator:
        """Bind the port and serve from a background thread; return once requests are answered."""
        if self._server is not None:
            raise RuntimeError("this HubEmulator is already running")
        import uvicorn

        from airflow_provider_spaces.emulator.app import build_app

        if self._seed_demo and not self.hub.spaces:
            self.hub.seed_demo()
        _quiet_scripted_drops()
        sock = _listening_socket(self._host, self._port)
        config = uvicorn.Config(
            build_app(self.hub),
            log_config=None,
            access_log=False,
            lifespan="off",
            # A request held by a "slow" fault must not hold the shutdown for long.
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"hub-emulator-{sock.getsockname()[1]}",
            daemon=True,
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        self._wait_started()
        log.info("Hub emulator serving on %s (speed %s)", self.url, self.hub.clock.speed)
        return self

    def stop(self) -> None:
        """Stop serving, join the thread and close the socket; safe to call twice."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                log.warning("Hub emulator thread %s did not stop within %s s", thread.name, _STOP_TIMEOUT)
        if sock is not None:
            sock.close()

    @property
    def port(self) -> int:
        """Return the port the emulator listens on."""
        if self._socket is None:
            raise RuntimeError("the HubEmulator is not running: use it in a with block or call start()")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """Return the base URL to use as the Hub endpoint, e.g. ``http://127.0.0.1:51234``."""
        host = self._host if ":" not in self._host else f"[{self._host}]"
        return f"http://{host}:{self.port}"

    @property
    def write_token(self) -> str:
        """Return the seeded write token (owner ``demo``, org ``demo-org``)."""
        return self.hub.write_token

    @property
    def read_token(self) -> str:
        """Return the seeded read-only token (owner ``demo``)."""
        return self.hub.read_token

    # -- scripting -------------------------------------------------------------------------------

    def add_token(
        self, owner: str, *, role: str = "write", orgs: Iterable[str] = (), token: str | None = None
    ) -> str:
        """Accept a new token for ``owner`` and its ``orgs``; return its value."""
        return self.hub.add_token(owner, role=role, orgs=orgs, token=token)

    def set_payment_method(self, namespace: str, enabled: bool) -> None:
        """Give or take away a namespace's payment method (paid hardware needs one)."""
        self.hub.set_payment_method(namespace, enabled)

    def add_space(
        self,
        space_id: str,
        *,
        hardware: str | None = FREE_FLAVOR,
        stage: str = "RUNNING",
        sdk: str = "gradio",
        private: bool = False,
        build_seconds: float | None = None,
        start_seconds: float | None = None,
        schedule_seconds: float | None = None,
        factory_build_seconds: float | None = None,
        sleep_time: int | None = None,
        storage: str | None = None,
        error_message: str | None = None,
        variables: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Space and return its runtime; ``stage="BUILDING"`` starts a first build."""
        return self.hub.add_space(
            space_id,
            hardware=hardware,
            stage=stage,
            sdk=sdk,
            private=private,
            build_seconds=build_seconds,
            start_seconds=start_seconds,
            schedule_seconds=schedule_seconds,
            factory_build_seconds=factory_build_seconds,
            sleep_time=sleep_time,
            storage=storage,
            error_message=error_message,
            variables=variables,
            secrets=secrets,
        )

    def runtime(self, space_id: str) -> dict[str, Any]:
        """Return a Space's runtime as the API would (not logged, not counted in the quota)."""
        return self.hub.space_runtime(space_id)

    def visit(self, space_id: str) -> dict[str, Any]:
        """Visit a Space: resets its idle time and wakes it when it sleeps."""
        return self.hub.visit(space_id)

    def add_fault(
        self,
        kind: str,
        *,
        space_id: str | None = None,
        count: int | None = None,
        seconds: float | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Script a fault for one Space or the whole server; see ``emulator.faults`` for kinds."""
        return self.hub.add_fault(kind, space_id=space_id, count=count, seconds=seconds, **options)

    def faults(self) -> list[dict[str, Any]]:
        """Return the faults that are still active."""
        return self.hub.list_faults()

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        self.hub.clear_faults()

    def set_quota(self, limit: int, window_seconds: int = DEFAULT_QUOTA_WINDOW) -> None:
        """Set the per-token quota (calls per fixed window of emulated seconds)."""
        self.hub.set_quota(limit, window_seconds)

    def set_price(self, flavor: str, usd_per_hour: float, *, space_id: str | None = None) -> None:
        """Price a flavor for the ledger, for every Space or for one."""
        self.hub.set_price(flavor, usd_per_hour, space_id=space_id)

    def set_speed(self, speed: float) -> None:
        """Change how many emulated seconds pass per real second."""
        self.hub.clock.set_speed(speed)

    def advance(self, seconds: float) -> float:
        """Move the emulated clock forward; return the new emulated time."""
        return self.hub.clock.advance(seconds)

    def now(self) -> float:
        """Return the emulated time (seconds since the epoch)."""
        return self.hub.clock.now()

    def ledger(self, space_id: str | None = None) -> dict[str, Any]:
        """Return the billing ledger of one Space, or of all Spaces with totals."""
        return self.hub.ledger(space_id)

    def request_log(self, space_id: str | None = None) -> list[dict[str, Any]]:
        """Return the logged API requests, optionally only those about one Space."""
        return self.hub.request_log(space_id)

    def reset(self) -> None:
        """Forget Spaces, faults, extra tokens, prices and the log; keep the seeded tokens and clock."""
        self.hub.reset()

    def seed_demo(self) -> list[str]:
        """Add the demo Spaces; return their ids."""
        return self.hub.seed_demo()

    # -- internals -------------------------------------------------------------------------------

    def _wait_started(self) -> None:
        server, thread = self._server, self._thread
        assert server is not None and thread is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Hub emulator did not start on {self._host}:{self._port}")
            time.sleep(0.005)


class _ScriptedDropFilter(logging.Filter):
    """Hide uvicorn's error line for a response cut short on purpose by a ``drop`` fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the record of a scripted drop, keep every other."""
        return record.getMessage() != "ASGI callable returned without completing response."


_DROP_FILTER = _ScriptedDropFilter()


def _quiet_scripted_drops() -> None:
    # The emulator cuts responses short only when a drop fault says so, and logs that itself.
    # Adding the same filter object twice is a no-op.
    logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock
