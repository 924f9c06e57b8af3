"""A small Hub on 127.0.0.1 for the hook's tests: it answers scripted replies and records requests.

The hook adds nothing to the client's HTTP behaviour (the client has its own tests for that); what
the hook's tests need is a real server to see that the connection's endpoint, token and user agent
arrive, and what a failing Hub does to the connection test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Answer:
    """What the small Hub replies to one method and path."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the small Hub received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class SmallHub:
    """Answer each method and path with its scripted reply; anything else gets 418."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.seen: list[Seen] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, method: str, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        self.answers[(method, path)] = Answer(status, body, headers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(hub: SmallHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            hub.seen.append(
                Seen(self.command, self.path, dict(self.headers.items()), json.loads(raw) if raw else None)
            )
            answer = hub.answers.get((self.command, self.path), Answer(418, {"error": "nothing scripted"}))
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Request-Id", "req-hook-test")
            for name, value in answer.headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def small_hub() -> Iterator[SmallHub]:
    hub = SmallHub()
    try:
        yield hub
    finally:
        hub.close()
