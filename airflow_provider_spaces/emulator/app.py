"""The emulator's HTTP face: a Starlette application over :class:`EmulatedHub`.

``HubMiddleware`` wraps every request: it gives it a request id, resolves the token, applies the
scripted HTTP faults and the per-token quota, adds the ``RateLimit`` headers and writes the request
log. Two routers sit behind it: the Hub's API (``/api/...``) and the scripting API under
``/_emulator/`` (no token, loopback clients only). Starlette and uvicorn are imported here, and this
module is imported only when a server starts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_spaces.emulator.core import EmulatedHub, HubProblem, QuotaState, UnknownSpaceError
from airflow_provider_spaces.emulator.faults import FaultError

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator"
_SPACE_PATH = "/api/spaces/{namespace}/{name}"
_MASK = "***"
_MAX_REASON = 120
# The Hub's bodies nest three levels at most; a limit far below Python's recursion limit keeps
# every walk over a body (masking secrets, writing the log) safe.
_MAX_DEPTH = 32

Operation = Callable[[EmulatedHub, "Context"], Any]


class Context:
    """What the middleware learnt about a request, handed to the route."""

    __slots__ = ("body", "caller", "request_id")

    def __init__(self, request_id: str, caller: Any, body: Any) -> None:
        self.request_id = request_id
        self.caller = caller
        self.body = body


def build_app(hub: EmulatedHub) -> ASGIApp:
    """Return the ASGI application serving ``hub``."""
    return HubMiddleware(hub, _hub_router(), _admin_router())


class HubMiddleware:
    """Request ids, faults, quota headers and the request log around both routers."""

    def __init__(self, hub: EmulatedHub, api: ASGIApp, admin: ASGIApp) -> None:
        self.hub = hub
        self.api = api
        self.admin = admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex
        scope["emulator.hub"] = self.hub
        raw_body = await _read_body(receive)
        body = _parse_json(raw_body)
        replay = _replayer(raw_body, receive)

        if scope["path"].startswith(ADMIN_PREFIX + "/") or scope["path"] == ADMIN_PREFIX:
            await self._admin(scope, replay, send, request_id, body)
            return
        await self._api(scope, replay, send, request_id, body)

    async def _admin(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, body: Any | BadBody
    ) -> None:
        extra = [(b"x-request-id", request_id.encode())]
        if not _is_loopback(scope):
            response = JSONResponse({"error": "The emulator's admin API answers loopback clients only"}, 403)
            await response(scope, receive, _adding_headers(send, extra, None))
            return
        if isinstance(body, BadBody):
            response = JSONResponse({"error": body.reason, "type": "ValueError"}, 400)
            await response(scope, receive, _adding_headers(send, extra, None))
            return
        scope["emulator"] = Context(request_id, None, body)
        await self.admin(scope, receive, _adding_headers(send, extra, None))

    async def _api(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, body: Any | BadBody
    ) -> None:
        hub = self.hub
        method = scope["method"]
        space_id = _space_of(scope["path"])
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        client = (scope.get("client") or ("unknown",))[0]
        caller = hub.caller_for(headers.get("authorization"), client)
        entry = _log_entry(
            hub, scope, request_id, None if isinstance(body, BadBody) else body, caller.owner, space_id
        )

        # Faults that act on the connection come before any answer is written.
        if hub.take_http_fault("drop", space_id, method) is not None:
            entry["fault"] = "drop"
            hub.record(entry)
            log.info(
                "Dropping the connection of %s %s as scripted (request %s)", method, scope["path"], request_id
            )
            await _drop(send)
            return
        slow = hub.take_http_fault("slow", space_id, method)
        if slow is not None:
            entry["fault"] = "slow"
            await asyncio.sleep(float(slow.options["delay"]))

        quota = hub.count_request(caller)
        problem = self._http_problem(space_id, method, quota, entry)
        if problem is None and isinstance(body, BadBody):
            problem = HubProblem(400, "BadRequest", body.reason)
        status_box: list[int] = []
        extra = [(b"x-request-id", request_id.encode())]
        if problem is not None:
            response = _error_response(problem, quota)
            await response(scope, receive, _adding_headers(send, extra, status_box))
        elif hub.take_http_fault("drop", space_id, method, after_acting=True) is not None:
            # The Hub does the work; the answer is lost on its way back.
            scope["emulator"] = Context(request_id, caller, body)
            await self.api(scope, receive, _discarding(status_box))
            # The status the Hub meant to send: what it did, which the client never learns.
            entry["fault"], entry["status"] = "drop", status_box[0] if status_box else None
            log.info(
                "Dropping the answer to %s %s after acting on it, as scripted (request %s)",
                method,
                scope["path"],
                request_id,
            )
            await _drop(send)
            hub.record(entry)
            return
        else:
            scope["emulator"] = Context(request_id, caller, body)
            quota_headers = [(k.lower().encode(), v.encode()) for k, v in quota.headers().items()]
            await self.api(scope, receive, _adding_headers(send, extra + quota_headers, status_box))
        entry["status"] = status_box[0] if status_box else None
        hub.record(entry)
        log.debug("%s %s -> %s (request %s)", method, scope["path"], entry["status"], request_id)

    def _http_problem(
        self, space_id: str | None, method: str, quota: QuotaState, entry: dict[str, Any]
    ) -> HubProblem | None:
        hub = self.hub
        failure = hub.take_http_fault("server_error", space_id, method)
        if failure is not None:
            entry["fault"] = "server_error"
            return HubProblem(int(failure.options["status"]), "ServerError", str(failure.options["message"]))
        limited = hub.take_http_fault("rate_limit", space_id, method)
        if limited is not None:
            entry["fault"] = "rate_limit"
            return _rate_limited(limited.options["retry_after"], limited.options["headers"], quota)
        if quota.exceeded:
            entry["fault"] = "quota"
            problem = HubProblem(
                429,
                "RateLimited",
                f"Rate limit reached: {quota.limit} requests per {quota.window} seconds for this token; "
                f"retry in {quota.reset_seconds} seconds",
            )
            problem.headers["Retry-After"] = str(quota.reset_seconds)
            return problem
        return None


# == Hub API ======================================================================================


def _hub_router() -> Router:
    space = _SPACE_PATH
    routes = [
        _route("/api/whoami-v2", "GET", lambda h, c, r: h.whoami(c.caller)),
        _route("/api/spaces/hardware", "GET", lambda h, c, r: h.hardware_catalog()),
        _route(space, "GET", lambda h, c, r: h.space_info(c.caller, _sid(r))),
        _route(space + "/runtime", "GET", lambda h, c, r: h.get_runtime(c.caller, _sid(r))),
        _route(space + "/hardware", "POST", lambda h, c, r: h.request_hardware(c.caller, _sid(r), c.body)),
        _route(space + "/sleeptime", "POST", lambda h, c, r: h.set_sleep_time(c.caller, _sid(r), c.body)),
        _route(space + "/pause", "POST", lambda h, c, r: h.pause(c.caller, _sid(r))),
        _route(
            space + "/restart",
            "POST",
            lambda h, c, r: h.restart(c.caller, _sid(r), factory=r.query_params.get("factory") == "true"),
        ),
        _route(space + "/dev-mode", "POST", lambda h, c, r: h.set_dev_mode(c.caller, _sid(r), c.body)),
        _route(space + "/secrets", "GET", lambda h, c, r: h.list_secrets(c.caller, _sid(r))),
        _route(space + "/secrets", "POST", lambda h, c, r: h.upsert_secret(c.caller, _sid(r), c.body)),
        _route(space + "/secrets", "DELETE", lambda h, c, r: h.delete_secret(c.caller, _sid(r), c.body)),
        _route(space + "/variables", "GET", lambda h, c, r: h.list_variables(c.caller, _sid(r))),
        _route(space + "/variables", "POST", lambda h, c, r: h.upsert_variable(c.caller, _sid(r), c.body)),
        _route(space + "/variables", "DELETE", lambda h, c, r: h.delete_variable(c.caller, _sid(r), c.body)),
        _route(space + "/storage", "POST", lambda h, c, r: h.request_storage(c.caller, _sid(r), c.body)),
        _route(space + "/storage", "DELETE", lambda h, c, r: h.delete_storage(c.caller, _sid(r))),
        _route(
            space + "/duplicate",
            "POST",
            lambda h, c, r: h.duplicate(c.caller, _sid(r), c.body, str(r.base_url)),
        ),
        Route(space + "/logs/{kind:str}", _logs, methods=["GET"]),
    ]
    return _merged(routes)


def _merged(routes: list[Route]) -> Router:
    """Group handlers by path so that one path serves several methods, and 404 in JSON otherwise."""
    by_path: dict[str, dict[str, Callable[..., Awaitable[Response]]]] = {}
    for route in routes:
        for method in route.methods or ():
            if method != "HEAD":
                by_path.setdefault(route.path, {})[method] = route.endpoint
    merged = [Route(path, _dispatch(handlers), methods=list(handlers)) for path, handlers in by_path.items()]
    return Router(merged, default=_not_found)


def _dispatch(
    handlers: dict[str, Callable[..., Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint


def _route(path: str, method: str, operation: Callable[[EmulatedHub, Context, Request], Any]) -> Route:
    async def endpoint(request: Request) -> Response:
        hub: EmulatedHub = request.scope["emulator.hub"]
        context: Context = request.scope["emulator"]
        try:
            payload = operation(hub, context, request)
        except HubProblem as problem:
            return _error_response(problem, None)
        return JSONResponse(payload)

    return Route(path, endpoint, methods=[method])


async def _logs(request: Request) -> Response:
    """Serve a Space's build or run log as server-sent events, then end the stream."""
    kind = request.path_params["kind"]
    if kind not in ("build", "run"):
        return await _not_found_response()
    hub: EmulatedHub = request.scope["emulator.hub"]
    try:
        events = hub.logs(request.scope["emulator"].caller, _sid(request), kind)
    except HubProblem as problem:
        return _error_response(problem, None)
    text = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
    return Response(text, media_type="text/event-stream")


def _sid(request: Request) -> str:
    return f"{request.path_params['namespace']}/{request.path_params['name']}"


# == admin API ====================================================================================


def _admin_router() -> Router:
    space = ADMIN_PREFIX + "/spaces/{namespace}/{name}"
    routes = [
        _admin("/info", "GET", lambda h, b, r: _info(h)),
        _admin("/reset", "POST", lambda h, b, r: h.reset()),
        _admin("/seed-demo", "POST", lambda h, b, r: h.seed_demo()),
        _admin("/tokens", "POST", lambda h, b, r: {"token": h.add_token(**b)}),
        _admin("/payment", "POST", lambda h, b, r: h.set_payment_method(b["namespace"], bool(b["enabled"]))),
        _admin("/spaces", "POST", lambda h, b, r: h.add_space(**b)),
        _admin("/spaces", "GET", lambda h, b, r: sorted(h.spaces)),
        _admin(space + "/runtime", "GET", lambda h, b, r: h.space_runtime(_sid(r)), full=True),
        _admin(space + "/visit", "POST", lambda h, b, r: h.visit(_sid(r)), full=True),
        _admin("/faults", "GET", lambda h, b, r: h.list_faults()),
        _admin("/faults", "POST", lambda h, b, r: h.add_fault(b.pop("kind"), **b)),
        _admin("/faults", "DELETE", lambda h, b, r: h.clear_faults()),
        _admin("/quota", "POST", lambda h, b, r: h.set_quota(**b)),
        _admin("/prices", "POST", lambda h, b, r: h.set_price(**b)),
        _admin("/clock", "GET", lambda h, b, r: _clock(h)),
        _admin("/clock", "POST", lambda h, b, r: _move_clock(h, b)),
        _admin("/ledger", "GET", lambda h, b, r: h.ledger(r.query_params.get("space_id"))),
        _admin("/requests", "GET", lambda h, b, r: h.request_log(r.query_params.get("space_id"))),
    ]
    return _merged(routes)


def _admin(
    path: str, method: str, operation: Callable[[EmulatedHub, Any, Request], Any], *, full: bool = False
) -> Route:
    async def endpoint(request: Request) -> Response:
        hub: EmulatedHub = request.scope["emulator.hub"]
        body = request.scope["emulator"].body
        body = dict(body) if isinstance(body, dict) else {}
        try:
            result = operation(hub, body, request)
        except UnknownSpaceError as error:
            return JSONResponse({"error": str(error), "type": "UnknownSpaceError"}, 404)
        except (ValueError, TypeError, KeyError, FaultError) as error:
            message = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            return JSONResponse({"error": message, "type": "ValueError"}, 400)
        return JSONResponse({"result": result})

    return Route(path if full else ADMIN_PREFIX + path, endpoint, methods=[method])


def _info(hub: EmulatedHub) -> dict[str, Any]:
    return {"write_token": hub.write_token, "read_token": hub.read_token, **_clock(hub)}


def _clock(hub: EmulatedHub) -> dict[str, Any]:
    return {"now": hub.clock.now(), "speed": hub.clock.speed}


def _move_clock(hub: EmulatedHub, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("speed") is not None:
        hub.clock.set_speed(float(body["speed"]))
    if body.get("advance") is not None:
        hub.clock.advance(float(body["advance"]))
    return _clock(hub)


# == helpers ======================================================================================


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up or tear down: the hub's state lives outside the event loop.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replayer(body: bytes, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BadBody:
    """A request body that is not JSON the Hub would accept, and why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_json(raw: bytes) -> Any | BadBody:
    """Return the JSON value of a body (None when empty), or a ``BadBody`` saying what is wrong.

    Stricter than Python's parser, as the Hub's is: NaN, Infinity and numbers too large for a
    float are refused, and so are a string no UTF-8 text can hold (a lone surrogate) and nesting
    deeper than ``_MAX_DEPTH``. A body that passes can always be written back as JSON, so no
    logged value can break the request log.
    """
    if not raw:
        return None
    too_deep = BadBody(f"Invalid JSON body: nested deeper than {_MAX_DEPTH} levels")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        return too_deep
    except ValueError as error:
        return BadBody(f"Invalid JSON body: {_first_line(str(error))}")
    if _deeper_than(body, _MAX_DEPTH):
        return too_deep

    try:
        # Answers and the request log are UTF-8 JSON: check once that this body can be written so.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        # Not the codec's message: it quotes the character, which may belong to a secret value.
        return BadBody("Invalid JSON body: a string holds a lone surrogate, which is not Unicode text")
    return body


def _deeper_than(body: Any, limit: int) -> bool:
    """Tell whether arrays and objects in ``body`` nest deeper than ``limit``, without recursion."""
    pending = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{_first_line(text)} is out of the range of a JSON number")
    return number


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= _MAX_REASON else line[:_MAX_REASON] + "..."


def _adding_headers(send: Send, extra: list[tuple[bytes, bytes]], status_box: list[int] | None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
            if status_box is not None:
                status_box.append(message["status"])
        await send(message)

    return wrapped


def _discarding(status_box: list[int]) -> Send:
    """Return a ``send`` that keeps the status of an answer and throws the answer away."""

    async def discard(message: Message) -> None:
        if message["type"] == "http.response.start":
            status_box.append(message["status"])

    return discard


def _error_response(problem: HubProblem, quota: QuotaState | None) -> Response:
    headers = {
        "X-Error-Code": problem.code,
        # Header values must be latin-1; the body keeps the full text.
        "X-Error-Message": problem.message.encode("latin-1", "replace").decode("latin-1"),
    }
    if quota is not None and "RateLimit" not in problem.headers:
        headers.update(quota.headers())
    headers.update(problem.headers)
    return JSONResponse({"error": problem.message, **problem.extra}, problem.status, headers=headers)


def _rate_limited(retry_after: int | None, style: str, quota: QuotaState) -> HubProblem:
    wait = int(retry_after) if retry_after is not None else quota.reset_seconds
    problem = HubProblem(429, "RateLimited", f"Too many requests: retry in {wait} seconds (emulated)")
    if style in ("both", "retry_after") and retry_after is not None:
        problem.headers["Retry-After"] = str(wait)
    if style in ("both", "ratelimit"):
        problem.headers["RateLimit"] = f'"api";r=0;t={wait}'
        problem.headers["RateLimit-Policy"] = quota.headers()["RateLimit-Policy"]
    return problem


async def _drop(send: Send) -> None:
    # Promise a body and stop half-way: the server closes the connection, and the client sees a
    # response cut short, as when a proxy or the network drops it.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"stage": "RUNN', "more_body": True})


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = await _not_found_response()
    await response(scope, receive, send)


async def _not_found_response() -> Response:
    message = "Not found: the emulator does not serve this path"
    return JSONResponse(
        {"error": message}, 404, headers={"X-Error-Code": "NotFound", "X-Error-Message": message}
    )


def _is_loopback(scope: Scope) -> bool:
    host = (scope.get("client") or ("",))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _space_of(path: str) -> str | None:
    parts = path.split("/")
    # /api/spaces/<namespace>/<name>[/...]; /api/spaces/hardware is the catalog, not a Space.
    if len(parts) >= 5 and parts[1] == "api" and parts[2] == "spaces" and parts[3] and parts[4]:
        return f"{parts[3]}/{parts[4]}"
    return None


def _log_entry(
    hub: EmulatedHub, scope: Scope, request_id: str, body: Any, owner: str | None, space_id: str | None
) -> dict[str, Any]:
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    return {
        "request_id": request_id,
        "method": scope["method"],
        "path": scope["path"],
        "query": query,
        "body": _masked(scope["path"], body),
        "status": None,
        "owner": owner,
        "space_id": _space_of(scope["path"]) if space_id is None else space_id,
        "real_time": time.time(),
        "emulated_time": hub.now(),
        "fault": None,
    }


def _masked(path: str, body: Any) -> Any:
    """Return the body for the log with every secret value replaced.

    Masked whatever the path's shape (a trailing slash, doubled slashes, another case: those are
    answered with a redirect or a 404, but the body is logged first): on a path with a
    ``secrets`` segment every ``value`` at any depth, or the whole body when it is not an object
    or a list; anywhere, the values in a ``secrets`` list (a duplicate's).
    """
    if any(part.lower() == "secrets" for part in path.split("/")):
        return _mask_all(body)
    return _mask_secret_lists(body)


def _mask_all(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return _mask_values(value)
    return None if value is None else _MASK


def _mask_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _MASK if key == "value" else _mask_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_values(item) for item in value]
    return value


def _mask_secret_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _mask_all(item) if key == "secrets" else _mask_secret_lists(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_secret_lists(item) for item in value]
    return value
