"""A scripted Hub on 127.0.0.1 for the client's tests, and a fake clock so retries never really wait.

The scripted Hub is a real HTTP/1.1 server (the standard library's, in a thread): it records every
request it receives and answers each with the next reply scripted for that method and path —
status, headers, body — optionally after a delay, or drops the connection without answering.
A request nothing was scripted for gets 418, which the client never retries, so a test that
forgot a reply fails loudly instead of hanging.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_spaces.hub.client import SpacesClient
from airflow_provider_spaces.hub.retry import RetryPolicy

TOKEN = "hf_scripted_test_token_4f1c9e"


@dataclass
class Reply:
    """What the scripted Hub answers to one request."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    request_id: str | None = "auto"


@dataclass
class Recorded:
    """One request as the scripted Hub received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ScriptedHub:
    """A recording HTTP server that answers with scripted replies."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queues: dict[tuple[str, str], deque[Reply]] = {}
        self._fallback: dict[tuple[str, str], Reply] = {}
        self._lock = threading.Lock()
        self._served = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A handler still sleeping through a scripted delay must not hold up the test's teardown.
        self._server.block_on_close = False
        # A short poll interval keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="scripted-hub", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, method: str, path: str, body: Any = None, *, times: int = 1, **options: Any) -> None:
        """Queue ``times`` identical replies to ``method path``; they are used up in order."""
        with self._lock:
            queue = self._queues.setdefault((method, path), deque())
            for _ in range(times):
                queue.append(Reply(body=body, **options))

    def always(self, method: str, path: str, body: Any = None, **options: Any) -> None:
        """Answer ``method path`` this way whenever its queue is empty."""
        with self._lock:
            self._fallback[(method, path)] = Reply(body=body, **options)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Return the recorded requests, optionally only those to ``method`` and ``path``."""
        with self._lock:
            return [
                each
                for each in self.requests
                if (method is None or each.method == method) and (path is None or each.path == path)
            ]

    def next_reply(self, request: Recorded) -> tuple[Reply, str]:
        with self._lock:
            self.requests.append(request)
            self._served += 1
            request_id = f"req-{self._served}"
            queue = self._queues.get((request.method, request.path))
            if queue:
                return queue.popleft(), request_id
            fallback = self._fallback.get((request.method, request.path))
        if fallback is not None:
            return fallback, request_id
        unscripted = {"error": f"no reply scripted for {request.method} {request.path}"}
        return Reply(status=418, body=unscripted), request_id

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(hub: ScriptedHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; without this, delayed acknowledgements add ~40 ms.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Recorded(
                self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body
            )
            reply, request_id = hub.next_reply(request)

            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                # Close without a single byte of answer, as a Hub or proxy dying mid-request would.
                self.close_connection = True
                return
            try:
                self._write(reply, request_id)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (read timeout): nothing left to tell it

        def _write(self, reply: Reply, request_id: str) -> None:
            if isinstance(reply.body, bytes):
                payload = reply.body
            elif isinstance(reply.body, str):
                payload = reply.body.encode()
            elif reply.body is None:
                payload = b""
            else:
                payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            if reply.body is not None and not isinstance(reply.body, (bytes, str)):
                self.send_header("Content-Type", "application/json")
            if reply.request_id is not None:
                self.send_header(
                    "X-Request-Id", request_id if reply.request_id == "auto" else reply.request_id
                )
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class FakeTime:
    """A monotonic clock that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def hub() -> Iterator[ScriptedHub]:
    scripted = ScriptedHub()
    try:
        yield scripted
    finally:
        scripted.close()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def retry_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, total_timeout=60.0)


@pytest.fixture
def make_client(hub: ScriptedHub, fake_time: FakeTime, retry_policy: RetryPolicy) -> Iterator[Any]:
    """Give tests a factory of clients aimed at the scripted Hub, with the fake clock and sleep."""
    made: list[SpacesClient] = []

    def build(**overrides: Any) -> SpacesClient:
        options: dict[str, Any] = {
            "endpoint": hub.url,
            "token": TOKEN,
            "connect_timeout": 2.0,
            "read_timeout": 2.0,
            "retry": retry_policy,
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
        }
        options.update(overrides)
        made.append(SpacesClient(**options))
        return made[-1]

    yield build
    for each in made:
        each.close()


@pytest.fixture
def client(make_client: Any) -> SpacesClient:
    spaces: SpacesClient = make_client()
    return spaces


def runtime_payload(
    stage: str = "RUNNING", current: str | None = "cpu-basic", **extra: Any
) -> dict[str, Any]:
    """Return a runtime as the Hub sends it for an ordinary Space."""
    payload: dict[str, Any] = {
        "stage": stage,
        "hardware": {"current": current, "requested": extra.pop("requested", current)},
        "storage": None,
        "gcTimeout": 172800,
        "replicas": {"requested": 1, "current": 1},
        "devMode": False,
        "domains": [{"domain": "demo-app.hf.space", "stage": "READY"}],
    }
    payload.update(extra)
    return payload


@pytest.fixture
def runtime() -> Any:
    """Give tests the builder of realistic runtime payloads."""
    return runtime_payload
