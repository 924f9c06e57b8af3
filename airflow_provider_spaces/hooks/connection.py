"""Turn an Airflow connection, or the Hugging Face environment, into the settings of a Hub client.

A ``huggingface_spaces`` connection keeps:

- the **token** in its password (Airflow masks it); empty means anonymous calls, which can read a
  public Space but change nothing;
- the **Hub endpoint** in its host: a full URL (``http://127.0.0.1:8080``, ``https://hub.example``)
  or a bare host name, which means https. Empty means ``$HF_ENDPOINT`` when that is set (as for
  the Hugging Face tools), else the public Hub ``https://huggingface.co``. A port set in the
  connection's port field is added to a host that names none;
- in its **extras** (JSON), each optional, a whole or decimal number, or a string holding one:

  - ``connect_timeout``: seconds to wait for a connection to the Hub (> 0);
  - ``read_timeout``: seconds to wait for the Hub to answer one request (> 0);
  - ``max_retries``: how often a call that failed for a passing reason (429, 5xx, a lost
    connection) is sent again; ``0`` sends every call once;
  - ``max_retry_wait``: the longest time, in seconds, one call may keep retrying, waits included.
  - ``rate_limit_quota`` and ``rate_limit_window``: the calls the token may make per window of
    that many seconds (a free user's 1,000 per 300 s when unset). Every wait in one process
    that uses the token shares them; once the Hub announces its own figures in an answer's
    ``RateLimit-Policy`` header, those count instead.

  Unset extras keep the Hub client's defaults. Airflow's older form prefix
  (``extra__huggingface_spaces__read_timeout``) is read too. Unknown keys are reported in a warning
  (by name, never by value) and otherwise ignored.

Nothing here looks a connection up or sends a request; the hook does both.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_spaces._provider_info import CONNECTION_TYPE, EXTRA_FIELDS
from airflow_provider_spaces.hub.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.sdk import Connection

__all__ = [
    "PUBLIC_HUB",
    "HubSettings",
    "InvalidConnectionError",
    "default_endpoint",
    "parse_endpoint",
    "settings_from_connection",
    "settings_from_environment",
]

log = logging.getLogger(__name__)

PUBLIC_HUB = "https://huggingface.co"
_LEGACY_PREFIX = f"extra__{CONNECTION_TYPE}__"
_COUNT_EXTRAS = frozenset({"max_retries", "rate_limit_quota"})
_ZERO_ALLOWED = frozenset({"max_retry_wait"})


class InvalidConnectionError(InvalidArgumentError):
    """A connection setting, or ``$HF_ENDPOINT``, cannot be used; ``argument`` names which one.

    Final, like every invalid argument: retrying the task cannot help until the setting is fixed.
    """


@dataclass(frozen=True)
class HubSettings:
    """Where the hook finds the Hub, with which token, and how patiently.

    ``None`` for a timeout or retry setting keeps the Hub client's default. ``source`` says where
    the settings came from, for log lines and messages. The token is left out of ``repr``.
    """

    endpoint: str
    token: str | None = field(default=None, repr=False)
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_retries: int | None = None
    max_retry_wait: float | None = None
    rate_limit_quota: int | None = None
    rate_limit_window: float | None = None
    source: str = ""


def settings_from_connection(conn: Connection) -> HubSettings:
    """Read the settings of the Airflow connection ``conn``.

    :raises InvalidConnectionError: the host or an extra is malformed; the message names it.
    """
    where = f"connection {conn.conn_id!r}"
    endpoint = parse_endpoint(conn.host, port=conn.port, setting=f"{where} host")
    extras = _load_extras(conn.extra, where)

    return HubSettings(
        endpoint=endpoint or default_endpoint(),
        token=_clean_token(conn.password),
        source=where,
        **_parse_extras(extras, where),
    )


def settings_from_environment(environ: Mapping[str, str] | None = None) -> HubSettings:
    """Read the settings the Hugging Face tools use: ``$HF_ENDPOINT`` and the saved token.

    The token comes from ``$HF_TOKEN``, ``$HUGGING_FACE_HUB_TOKEN`` or the token file, in that order.
    """
    from airflow_provider_spaces.hub.auth import get_token

    env = os.environ if environ is None else environ
    return HubSettings(
        endpoint=default_endpoint(env),
        token=_clean_token(get_token(env)),
        source="the Hugging Face environment ($HF_TOKEN or the token file, $HF_ENDPOINT)",
    )


def default_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """Return ``$HF_ENDPOINT`` when it is set, else the public Hub."""
    env = os.environ if environ is None else environ
    return parse_endpoint(env.get("HF_ENDPOINT"), setting="HF_ENDPOINT") or PUBLIC_HUB


def parse_endpoint(raw: str | None, *, port: int | None = None, setting: str) -> str | None:
    """Return ``raw`` as a normalised http(s) base URL, or None when it is empty.

    :raises InvalidConnectionError: ``raw`` is not an http(s) URL or host name.
    """
    text = (raw or "").strip()
    if not text:
        return None

    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise InvalidConnectionError(
            setting, f"the Hub endpoint must use http or https, not {parts.scheme!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidConnectionError(setting, "put the token in the password field, not in the endpoint URL")
    if not parts.hostname or parts.query or parts.fragment:
        raise InvalidConnectionError(
            setting, f"expected a URL such as {PUBLIC_HUB} or a host name, not {raw!r}"
        )

    try:
        url_port = parts.port
    except ValueError:
        raise InvalidConnectionError(
            setting, f"the port in {parts.netloc!r} is not a valid port number"
        ) from None

    netloc = parts.netloc if port is None or url_port is not None else f"{parts.netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _clean_token(raw: str | None) -> str | None:
    return (raw or "").strip() or None


def _load_extras(raw: str | None, where: str) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        extras = json.loads(raw)
    except ValueError:
        raise InvalidConnectionError(f"{where} extra", "is not valid JSON") from None
    if not isinstance(extras, dict):
        raise InvalidConnectionError(f"{where} extra", "must be a JSON object")
    return extras


def _parse_extras(extras: dict[str, Any], where: str) -> dict[str, Any]:
    values = _pick_known(extras, where)
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        setting = f"{where} extra {name!r}"
        if name in _COUNT_EXTRAS:
            parsed[name] = _count(value, setting, minimum=EXTRA_FIELDS[name].minimum)
        else:
            parsed[name] = _seconds(value, setting, allow_zero=name in _ZERO_ALLOWED)
    return parsed


def _pick_known(extras: dict[str, Any], where: str) -> dict[str, Any]:
    """Return the set extras under their short names; warn about the keys we do not know."""
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in extras.items():
        name = key[len(_LEGACY_PREFIX) :] if key.startswith(_LEGACY_PREFIX) else key
        if name not in EXTRA_FIELDS:
            unknown.append(key)
        elif value is not None and value != "":
            # The short name wins over the prefixed one, whichever comes first.
            values[name] = value if key == name else values.get(name, value)

    if unknown:
        log.warning(
            "%s: ignoring unknown extra keys %s; known keys: %s",
            where.capitalize(),
            ", ".join(sorted(unknown)),
            ", ".join(EXTRA_FIELDS),
        )
    return values


def _seconds(value: Any, setting: str, *, allow_zero: bool) -> float:
    number = _number(value, setting, "a number of seconds")
    too_small = number < 0 if allow_zero else number <= 0
    if not math.isfinite(number) or too_small:
        bound = "0 or more" if allow_zero else "greater than 0"
        raise InvalidConnectionError(setting, f"must be a number of seconds, {bound}, not {value!r}")
    return number


def _count(value: Any, setting: str, *, minimum: int) -> int:
    number = _number(value, setting, "a whole number")
    if not number.is_integer() or number < minimum:
        raise InvalidConnectionError(setting, f"must be a whole number, {minimum} or more, not {value!r}")
    return int(number)


def _number(value: Any, setting: str, what: str) -> float:
    # JSON true/false are ints to Python; a checkbox-like value is a mistake, not 1 or 0.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidConnectionError(setting, f"must be {what}, not {value!r}")
    try:
        return float(value)
    except ValueError:
        raise InvalidConnectionError(setting, f"must be {what}, not {value!r}") from None
