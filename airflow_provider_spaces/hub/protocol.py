"""The Hub's Spaces API as data: what each call sends, and how an answer becomes a result or an error.

Each builder below validates its arguments and returns a :class:`HubCall` (method, path, query,
JSON body, and whether repeating it is safe); :func:`read_answer` turns a status, headers and body
into parsed JSON or the matching :class:`HubError`. No HTTP library is imported here: the
synchronous client (requests) sends these calls today, and an asynchronous one can send the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_spaces.hub.errors import (
    InvalidArgumentError,
    UnexpectedResponseError,
    error_from_response,
    header_value,
)
from airflow_provider_spaces.hub.validation import (
    validate_flavor,
    validate_key,
    validate_sleep_time,
    validate_space_id,
    validate_storage_tier,
    validate_visibility,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ENDPOINT",
    "DEFAULT_READ_TIMEOUT",
    "HubAnswer",
    "HubCall",
    "SecretOrVariable",
    "check_timeout",
    "read_answer",
    "resolve_endpoint",
]

SecretOrVariable = Mapping[str, str] | Iterable[Mapping[str, str]]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0


def resolve_endpoint(endpoint: str | None) -> str:
    """Return the Hub's base URL: ``endpoint``, else ``$HF_ENDPOINT``, else the public Hub."""
    chosen = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    chosen = chosen.strip().rstrip("/")
    if not chosen.startswith(("http://", "https://")) or chosen in ("http:/", "https:/"):
        raise InvalidArgumentError(
            "endpoint", f"{chosen!r} is not an http(s) URL (for example https://huggingface.co)"
        )
    return chosen


def check_timeout(value: float, argument: str) -> float:
    """Return ``value`` as seconds when it is a number above 0; raise naming ``argument`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidArgumentError(argument, f"must be a number of seconds > 0, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class HubCall:
    """One request to the Hub, described before it is sent.

    :param action: what the call does, as a verb phrase for messages, ``{space}`` standing for
        the Space ("pause {space}").
    :param idempotent: whether sending it twice leaves the Space as sending it once does, so that
        it may be repeated after a failure where the Hub may already have acted.
    :param redact: values (secret values) that must never show in an error message.
    """

    method: str
    path: str
    action: str
    space_id: str | None = None
    params: Mapping[str, str] | None = None
    body: Any = None
    idempotent: bool = True
    redact: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        # The body may hold secret values: show only where the call goes.
        return f"HubCall({self.method} {self.path})"


@dataclass(frozen=True)
class HubAnswer:
    """A successful answer: its status, headers, parsed JSON body and request id."""

    status: int
    headers: Mapping[str, str]
    payload: Any
    request_id: str | None


def _space_path(space_id: str, suffix: str = "") -> str:
    # The id goes into the path as is: the Hub expects the slash between namespace and name.
    return f"/api/spaces/{validate_space_id(space_id)}{suffix}"


def runtime_call(space_id: str) -> HubCall:
    """Read a Space's runtime."""
    return HubCall("GET", _space_path(space_id, "/runtime"), "read the runtime of {space}", space_id)


def space_info_call(space_id: str) -> HubCall:
    """Read a Space's repository information."""
    return HubCall("GET", _space_path(space_id), "read the information of {space}", space_id)


def hardware_call(space_id: str, hardware: str, *, sleep_time: int | None = None) -> HubCall:
    """Request a hardware flavor, optionally with a sleep time."""
    body: dict[str, Any] = {"flavor": str(validate_flavor(hardware))}
    if sleep_time is not None:
        body["sleepTimeSeconds"] = validate_sleep_time(sleep_time)
    return HubCall(
        "POST", _space_path(space_id, "/hardware"), "request hardware for {space}", space_id, body=body
    )


def sleep_time_call(space_id: str, sleep_time: int) -> HubCall:
    """Set how long an idle Space on paid hardware runs before it sleeps."""
    body = {"seconds": validate_sleep_time(sleep_time)}
    return HubCall(
        "POST", _space_path(space_id, "/sleeptime"), "set the sleep time of {space}", space_id, body=body
    )


def pause_call(space_id: str) -> HubCall:
    """Pause a Space."""
    return HubCall("POST", _space_path(space_id, "/pause"), "pause {space}", space_id)


def restart_call(space_id: str, *, factory_reboot: bool = False) -> HubCall:
    """Restart a Space; a factory reboot rebuilds without the build cache.

    Not idempotent: a second restart restarts the app again, and a paused Space starts billing.
    """
    params = {"factory": "true"} if factory_reboot else None
    action = "factory-reboot {space}" if factory_reboot else "restart {space}"
    return HubCall(
        "POST", _space_path(space_id, "/restart"), action, space_id, params=params, idempotent=False
    )


def dev_mode_call(space_id: str, *, enabled: bool) -> HubCall:
    """Turn dev mode on or off."""
    action = "enable dev mode on {space}" if enabled else "disable dev mode on {space}"
    return HubCall("POST", _space_path(space_id, "/dev-mode"), action, space_id, body={"enabled": enabled})


def _entry(key: str, value: Any, description: str | None, *, argument: str) -> dict[str, str]:
    validate_key(key, argument=argument)
    if not isinstance(value, str):
        raise _invalid("value", f"must be a string, not {type(value).__name__}")
    if description is not None and not isinstance(description, str):
        raise _invalid("description", f"must be a string, not {type(description).__name__}")
    entry = {"key": key, "value": value}
    if description is not None:
        entry["description"] = description
    return entry


def _invalid(argument: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(argument, message)


def add_secret_call(space_id: str, key: str, value: str, *, description: str | None = None) -> HubCall:
    """Add or update a secret (an upsert: repeating it leaves the same secret)."""
    body = _entry(key, value, description, argument="key")
    return HubCall(
        "POST",
        _space_path(space_id, "/secrets"),
        "add a secret to {space}",
        space_id,
        body=body,
        redact=(value,),
    )


def delete_secret_call(space_id: str, key: str) -> HubCall:
    """Delete a secret; deleting one that does not exist succeeds too."""
    body = {"key": validate_key(key)}
    return HubCall(
        "DELETE", _space_path(space_id, "/secrets"), "delete a secret of {space}", space_id, body=body
    )


def secrets_call(space_id: str) -> HubCall:
    """List a Space's secrets (keys and metadata, never values)."""
    return HubCall("GET", _space_path(space_id, "/secrets"), "list the secrets of {space}", space_id)


def variables_call(space_id: str) -> HubCall:
    """List a Space's variables."""
    return HubCall("GET", _space_path(space_id, "/variables"), "list the variables of {space}", space_id)


def add_variable_call(space_id: str, key: str, value: str, *, description: str | None = None) -> HubCall:
    """Add or update a variable (an upsert)."""
    body = _entry(key, value, description, argument="key")
    return HubCall(
        "POST", _space_path(space_id, "/variables"), "add a variable to {space}", space_id, body=body
    )


def delete_variable_call(space_id: str, key: str) -> HubCall:
    """Delete a variable; an unknown key is a no-op."""
    body = {"key": validate_key(key)}
    return HubCall(
        "DELETE", _space_path(space_id, "/variables"), "delete a variable of {space}", space_id, body=body
    )


def storage_call(space_id: str, storage: str) -> HubCall:
    """Request persistent storage (legacy offer).

    Not repeated after a failure where the Hub may have acted: asking again for the tier the
    Space already got can be refused, which would report a success as a failure.
    """
    body = {"tier": str(validate_storage_tier(storage))}
    return HubCall(
        "POST",
        _space_path(space_id, "/storage"),
        "request storage for {space}",
        space_id,
        body=body,
        idempotent=False,
    )


def delete_storage_call(space_id: str) -> HubCall:
    """Delete persistent storage and its data (legacy offer).

    Not repeated after a failure where the Hub may have acted: a second delete is refused with
    400 once the storage is gone.
    """
    return HubCall(
        "DELETE",
        _space_path(space_id, "/storage"),
        "delete the storage of {space}",
        space_id,
        idempotent=False,
    )


def hardware_catalog_call() -> HubCall:
    """List the hardware flavors the Hub offers, with prices."""
    return HubCall("GET", "/api/spaces/hardware", "list the hardware flavors")


def whoami_call() -> HubCall:
    """Ask whom the token belongs to."""
    return HubCall("GET", "/api/whoami-v2", "read the token's identity")


def duplicate_call(
    from_id: str,
    to_id: str,
    *,
    visibility: str | None = None,
    private: bool | None = None,
    hardware: str | None = None,
    storage: str | None = None,
    sleep_time: int | None = None,
    secrets: SecretOrVariable | None = None,
    variables: SecretOrVariable | None = None,
) -> HubCall:
    """Duplicate ``from_id`` into ``to_id``; each option is sent only when set.

    Not idempotent: once the target exists a repeat answers 409. The client settles a failure
    where the Hub may have acted by checking whether the target exists.
    """
    validate_space_id(from_id, argument="from_id")
    validate_space_id(to_id, argument="to_id")
    if from_id == to_id:
        raise _invalid("to_id", f"must differ from from_id ({from_id!r}): a Space cannot be its own copy")

    body: dict[str, Any] = {"repository": to_id}
    chosen = _visibility(visibility, private)
    if chosen is not None:
        body["visibility"] = chosen
    if hardware is not None:
        body["hardware"] = str(validate_flavor(hardware))
    if storage is not None:
        body["storageTier"] = str(validate_storage_tier(storage))
    if sleep_time is not None:
        body["sleepTimeSeconds"] = validate_sleep_time(sleep_time)
    if secrets is not None:
        body["secrets"] = _entries(secrets, argument="secrets")
    if variables is not None:
        body["variables"] = _entries(variables, argument="variables")

    redact = tuple(entry["value"] for entry in body.get("secrets", ()))
    return HubCall(
        "POST",
        _space_path(from_id, "/duplicate"),
        f"duplicate {{space}} into {to_id}",
        from_id,
        body=body,
        idempotent=False,
        redact=redact,
    )


def _visibility(visibility: str | None, private: bool | None) -> str | None:
    if private is not None and not isinstance(private, bool):
        raise _invalid("private", f"must be True or False, not {type(private).__name__}")
    if visibility is None:
        # The Hub's newer field; ``private`` is kept as the older clients' way to say the same.
        return None if private is None else "private" if private else "public"
    validate_visibility(visibility)
    if private is not None and (visibility == "private") != private:
        raise _invalid("private", f"private={private} contradicts visibility={visibility!r}: pass only one")
    return visibility


def _entries(items: SecretOrVariable, *, argument: str) -> list[dict[str, str]]:
    if isinstance(items, Mapping):
        return [_entry(key, value, None, argument=f"{argument} key") for key, value in items.items()]
    if isinstance(items, (str, bytes)):
        raise _invalid(argument, "must be a mapping of key to value, or a list of {key, value, description}")

    entries = []
    for item in items:
        if not isinstance(item, Mapping) or "key" not in item or "value" not in item:
            raise _invalid(argument, "each entry must be a mapping with 'key' and 'value'")
        entries.append(
            _entry(item["key"], item["value"], item.get("description"), argument=f"{argument} key")
        )
    return entries


def read_answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    call: HubCall,
    authenticated: bool,
    redact: Iterable[str] = (),
) -> HubAnswer:
    """Return the parsed answer to ``call``, or raise the matching error for an error status.

    An empty body reads as ``{}`` (the Hub answers some writes with nothing to say).

    :raises HubHTTPError: the status is 400 or above (the subclass matches the status).
    :raises UnexpectedResponseError: a success whose body is not JSON, or a status that is
        neither a success nor an error (a redirect left over).
    """
    request_id = header_value(headers, "X-Request-Id")
    if status >= 400:
        raise error_from_response(
            status,
            headers,
            body,
            space_id=call.space_id,
            action=call.action,
            authenticated=authenticated,
            redact=(*call.redact, *redact),
        )

    if not 200 <= status < 300:
        # Redirects are followed by the HTTP layer; one left over has no body to read.
        raise UnexpectedResponseError(
            f"HTTP {status} where an answer or an error was expected",
            status=status,
            space_id=call.space_id,
            action=call.action,
            request_id=request_id,
        )
    if body is None or not body.strip():
        return HubAnswer(status, headers, {}, request_id)
    try:
        payload = json.loads(body)
    except ValueError:
        raise UnexpectedResponseError(
            f"HTTP {status} with a body that is not JSON",
            status=status,
            space_id=call.space_id,
            action=call.action,
            request_id=request_id,
        ) from None
    return HubAnswer(status, headers, payload, request_id)
