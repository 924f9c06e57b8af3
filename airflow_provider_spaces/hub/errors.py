"""The errors of the Hub client, and the one place that turns a Hub response into one of them.

Every error is a :class:`HubError`. Those that come from an HTTP answer carry the status, the
Space, the action that failed, the Hub's own message, its ``X-Error-Code`` and its request id
(which Hub support asks for), and say what to check next. ``is_transient`` tells a caller whether
trying again later can help (rate limits, server and network trouble); ``is_final`` errors need a
person to change something first, so Airflow retries would only burn quota.

Nothing here imports an HTTP library: :func:`error_from_response` works on a status, a header
mapping and a body, so the synchronous client and an asynchronous one share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from airflow_provider_spaces.hub.models import RateLimitState

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "HubConnectionError",
    "HubError",
    "HubHTTPError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "SpaceStageError",
    "SpaceWaitTimeout",
    "UnexpectedResponseError",
    "describe_action",
    "error_from_response",
    "header_value",
]

# Longest piece of a non-JSON error body quoted in a message; proxies answer with whole HTML pages.
_MAX_QUOTED_BODY = 200
_REDACTED = "***"


class HubError(Exception):
    """Base class of every error raised by the Hub client.

    :param message: what went wrong, in one sentence.
    :param space_id: the Space the call was about, if any.
    :param action: what the client tried to do, as a verb phrase; ``{space}`` in it stands for
        the Space ("request hardware for {space}"), see :func:`describe_action`.
    :param hint: what to check next.
    """

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        space_id: str | None = None,
        action: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.space_id = space_id
        self.action = describe_action(action, space_id) if action else None
        self.hint = hint
        self.attempts = 1
        self.elapsed: float | None = None

    @property
    def is_transient(self) -> bool:
        """Tell whether the same call may succeed later without anyone changing anything."""
        return self.transient

    @property
    def is_final(self) -> bool:
        """Tell whether retrying is pointless until a person fixes the cause."""
        return not self.is_transient

    def __str__(self) -> str:
        parts = [self._headline()]
        if self.attempts > 1:
            waited = f" over {self.elapsed:.1f} s" if self.elapsed is not None else ""
            parts.append(f"Gave up after {self.attempts} attempts{waited}.")
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)

    def _headline(self) -> str:
        if not self.action:
            return _sentence(self.message)
        return _sentence(f"Could not {self.action}: {self.message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default pickling of exceptions; rebuild from
        # the instance state instead so errors can cross process boundaries intact.
        return (_rebuild_error, (type(self), self.args, self.__dict__.copy()))


def describe_action(action: str, space_id: str | None) -> str:
    """Return ``action`` with its ``{space}`` placeholder filled in ("pause Space demo/app")."""
    subject = f"Space {space_id}" if space_id else "the Space"
    if "{space}" in action:
        return action.replace("{space}", subject)
    return f"{action} for {subject}" if space_id else action


def _rebuild_error(cls: type[HubError], args: tuple[Any, ...], state: dict[str, Any]) -> HubError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


class InvalidArgumentError(HubError, ValueError):
    """An argument is malformed; raised before any request is sent.

    :param argument: the name of the offending argument, as the caller spelled it.
    """

    def __init__(self, argument: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.argument = argument

    def _headline(self) -> str:
        return _sentence(f"Invalid {self.argument}: {self.message}")


class HubHTTPError(HubError):
    """The Hub answered with an error status.

    :param status: the HTTP status code.
    :param hub_message: the Hub's own words (``error`` in the body, else ``X-Error-Message``).
    :param error_code: the ``X-Error-Code`` header, e.g. ``RepoNotFound``.
    :param request_id: the ``X-Request-Id`` header; quote it to Hub support.
    """

    default_hint: ClassVar[str] = ""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        space_id: str | None = None,
        action: str | None = None,
        hub_message: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message or _status_summary(status, hub_message, error_code, request_id),
            space_id=space_id,
            action=action,
            hint=hint if hint is not None else self.default_hint or None,
        )
        self.status = status
        self.hub_message = hub_message
        self.error_code = error_code
        self.request_id = request_id


def _status_summary(
    status: int | None, hub_message: str | None, error_code: str | None, request_id: str | None
) -> str:
    summary = f"HTTP {status}{_phrase(status)}" if status is not None else "the Hub refused the call"
    if error_code:
        summary += f" ({error_code})"
    summary += f": {hub_message}" if hub_message else ""
    if request_id:
        summary += f" [request id {request_id}]"
    return summary


def _phrase(status: int) -> str:
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


class BadRequestError(HubHTTPError):
    """400: the request makes no sense for this Space."""

    default_hint = (
        "Check that the call suits this Space: static Spaces have no hardware, pause or restart; "
        "sleep time can only be set on paid hardware; storage cannot shrink without deleting it first."
    )


class AuthenticationError(HubHTTPError):
    """401: the token is missing, invalid, or lacks the right to change this Space's settings."""

    default_hint = (
        "The token is missing, invalid or expired, or lacks write access to this Space's settings: "
        "use a write token (or a fine-grained token with write access to the Space's repository). "
        "A private Space also answers 401 to a call without a token."
    )


class PermissionDeniedError(HubHTTPError):
    """403: the token's owner is not allowed to do this."""

    default_hint = (
        "The token's owner may not do this: check that it owns the Space (or has write rights in its "
        "organization), that the account has a payment method for paid hardware, and that no quota "
        "is reached."
    )


class NotFoundError(HubHTTPError):
    """404: the Space (or the endpoint) does not exist for this token."""

    default_hint = (
        "Check the Space id (namespace/name, case included) and, for a private Space, that the token "
        "belongs to an account that can see it."
    )


class ConflictError(HubHTTPError):
    """409: the target already exists (a duplicate's target Space).

    :param url: the URL of the existing target when the Hub gives it.
    """

    default_hint = "The target Space already exists: pick another id, or pass exist_ok=True to accept it."

    def __init__(self, message: str = "", *, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.url = url


AlreadyExistsError = ConflictError


class RateLimitedError(HubHTTPError):
    """429: the token (or the address) used up its request quota for the current window.

    :param retry_after: seconds the Hub asks to wait, from ``Retry-After`` or the ``RateLimit``
        header, when it says.
    :param rate_limit: the parsed ``RateLimit`` / ``RateLimit-Policy`` headers of the answer.
    """

    transient = True

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        rate_limit: RateLimitState | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        if self.hint is None:
            self.hint = _rate_limit_hint(retry_after, rate_limit)


def _rate_limit_hint(retry_after: float | None, rate_limit: RateLimitState | None) -> str:
    if retry_after is not None:
        advice = f"Come back in {retry_after:.0f} s."
    else:
        advice = "Wait before calling again."
    if rate_limit is not None and rate_limit.quota is not None and rate_limit.window_seconds is not None:
        advice += (
            f" The quota is {rate_limit.quota} calls per {rate_limit.window_seconds:.0f} s for this "
            "token: poll less often or spread the Spaces over several tokens."
        )
    return advice


class ServerError(HubHTTPError):
    """5xx: the Hub failed on its side.

    :param retry_after: seconds the Hub asks to wait (``Retry-After``, common on 503), if it says.
    """

    transient = True
    default_hint = "The Hub failed on its side; this is usually temporary, try again later."

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UnexpectedResponseError(HubHTTPError):
    """The Hub's answer could not be read (not JSON, or without the keys every answer has)."""

    transient = True
    default_hint = (
        "Check that the endpoint points at the Hub and not at a proxy or login page; a garbled "
        "answer is often temporary."
    )


class HubConnectionError(HubError):
    """No answer came back: the connection failed, timed out or was dropped.

    :param may_have_acted: False when the request never reached the Hub (refused connection,
        connect timeout), True when it may have been received and acted upon (read timeout,
        connection dropped after sending).
    """

    transient = True

    def __init__(self, message: str, *, may_have_acted: bool, **kwargs: Any) -> None:
        kwargs.setdefault("hint", _connection_hint(may_have_acted))
        super().__init__(message, **kwargs)
        self.may_have_acted = may_have_acted


def _connection_hint(may_have_acted: bool) -> str:
    hint = "Check the endpoint URL, the network and any proxy between here and the Hub."
    if may_have_acted:
        hint += " The request may have reached the Hub before the connection failed."
    return hint


class SpaceStageError(HubError):
    """The Space is in an error stage, or in a stage that cannot lead to the target on its own.

    :param stage: the stage the Space was in.
    :param hub_message: the runtime's ``errorMessage``, when the Hub gave one.
    :param url: the Space's page, where its logs are.
    :param request_id: the request id of the runtime read that showed the stage.
    :param reason: the machine-readable reason from the waiting rule.
    """

    def __init__(
        self,
        message: str,
        *,
        space_id: str,
        stage: str,
        hub_message: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, space_id=space_id, hint=hint)
        self.stage = stage
        self.hub_message = hub_message
        self.url = url
        self.request_id = request_id
        self.reason = reason


class SpaceWaitTimeout(HubError, TimeoutError):
    """The Space did not reach the target in the time allowed.

    Transient: a slow build may finish on a later try, so an Airflow retry can make sense.

    :param last_stage: the stage seen on the last read.
    :param waited_seconds: how long the wait lasted.
    """

    transient = True

    def __init__(
        self,
        *,
        space_id: str,
        last_stage: str | None,
        waited_seconds: float,
        target: str | None = None,
        hint: str | None = None,
    ) -> None:
        goal = f" for {target}" if target else ""
        message = (
            f"Space {space_id} waited{goal} for {waited_seconds:.0f} s without arriving; "
            f"last stage: {last_stage or 'unknown'}"
        )
        super().__init__(message, space_id=space_id, hint=hint)
        self.last_stage = last_stage
        self.waited_seconds = waited_seconds


_ERRORS_BY_STATUS: dict[int, type[HubHTTPError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Return a header's value whatever the case of its name in ``headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    space_id: str | None,
    action: str,
    authenticated: bool = True,
    redact: Iterable[str] = (),
) -> HubHTTPError:
    """Turn an error answer of the Hub into the matching :class:`HubHTTPError`.

    :param authenticated: whether the request carried a token; a 401 without one says so.
    :param redact: strings (token, secret values) that must never appear in the message, should
        the Hub echo them back.
    """
    payload = _json_or_none(body)
    hub_message = _hub_message(payload, headers, body)
    secrets = [value for value in redact if value]
    if hub_message:
        hub_message = _redacted(hub_message, secrets)

    fields: dict[str, Any] = {
        "status": status,
        "space_id": space_id,
        "action": action,
        "hub_message": hub_message,
        "error_code": header_value(headers, "X-Error-Code"),
        "request_id": header_value(headers, "X-Request-Id"),
    }
    if status == 401 and not authenticated:
        fields["hint"] = "No token was sent: pass a token (a write token to change the Space)."
    if status == 409:
        url = payload.get("url") if isinstance(payload, Mapping) else None
        return ConflictError(url=url if isinstance(url, str) else None, **fields)
    if status == 429 or status >= 500:
        return _transient(status, headers, fields)
    return _ERRORS_BY_STATUS.get(status, HubHTTPError)(**fields)


def _transient(status: int, headers: Mapping[str, str], fields: dict[str, Any]) -> HubHTTPError:
    # Imported here because retry.py imports this module for the error classes.
    from airflow_provider_spaces.hub.retry import parse_rate_limit, server_wait

    if status == 429:
        return RateLimitedError(
            retry_after=server_wait(headers), rate_limit=parse_rate_limit(headers), **fields
        )
    return ServerError(retry_after=server_wait(headers), **fields)


def _json_or_none(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _hub_message(payload: Any, headers: Mapping[str, str], body: bytes | str | None) -> str | None:
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, str) and error.strip():
            return error.strip()
    from_header = header_value(headers, "X-Error-Message")
    if from_header:
        return from_header.strip()
    if payload is None and body:
        # Not JSON: a proxy's page or plain text. Quote a short, single-line piece of it.
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        text = " ".join(text.split())
        if text:
            return text[:_MAX_QUOTED_BODY] + ("..." if len(text) > _MAX_QUOTED_BODY else "")
    return None


def _redacted(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text
