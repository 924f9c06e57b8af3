"""Scripted faults: what the emulated Hub does wrong, for how many calls or for how long.

A fault applies to one Space or, without a Space id, to the whole server. It lapses after
``count`` uses (None: no limit) or after ``seconds`` of emulated time (None: no limit),
whichever comes first. Two families exist:

* **Space faults** change what the next build or start of a Space does: ``build_error``,
  ``runtime_error``, ``stuck`` and ``no_capacity`` (which may also refuse the request outright).
* **HTTP faults** change the answer to a request: ``server_error``, ``rate_limit``, ``slow``,
  ``drop`` and ``refuse`` (one action, e.g. a hardware downgrade, answered with an error).

Options by kind (defaults in ``FAULT_OPTIONS``): ``build_error`` and ``runtime_error`` take a
``message`` (and ``after_seconds`` of running before the crash); ``stuck`` a ``stage`` (BUILDING or
APP_STARTING); ``no_capacity`` a ``flavor``, and ``refuse=True`` with a ``status`` to answer the
request with an error instead of stalling the build; ``server_error`` a 5xx ``status``;
``rate_limit`` a ``retry_after`` and ``headers`` (``both``, ``retry_after`` or ``ratelimit``: which
headers say how long to wait); ``slow`` a ``delay``; ``refuse`` an ``action`` (one of ``ACTIONS``),
optionally a ``flavor`` (for ``hardware``), a ``status``, ``code`` and ``message``. HTTP faults also
take a ``method`` to hit only, say, POST requests.

Every option is checked when the fault is added (``FaultError``, a ``ValueError`` naming the option,
and 400 from the admin endpoint), so that a script with a typo fails at once rather than turning
every matching call into a 500: ``retry_after`` is a whole number of seconds up to
``MAX_RETRY_AFTER`` (or null), ``delay`` a number of seconds up to ``MAX_SLOW_DELAY``, ``count``
a whole number of 1 or more, ``seconds`` and ``after_seconds`` finite.

``slow`` delays in real seconds (it is about client timeouts, which run on real time); windows given
with ``seconds`` are emulated time. ``drop`` sends the status line, the headers and the first bytes
of the body and then closes the connection: the ASGI server offers no way to reset a connection
before any byte, so clients see a response cut short rather than a refused connection. By default
the Hub has not acted on a dropped request; with ``after_acting=True`` it has (the hardware is
requested, the Space paused, ...) and only its answer is lost, which is what a client cannot tell
apart and must survive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from airflow_provider_spaces.emulator.space import APP_STARTING, BUILDING, OK, Outcome

# Each kind with the options it accepts and their defaults.
FAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "build_error": {"message": "Build failed with exit code: 1 (emulated)"},
    "runtime_error": {"message": "Exit code: 1. Reason: the app crashed (emulated)", "after_seconds": 0.0},
    "stuck": {"stage": BUILDING},
    "no_capacity": {"flavor": None, "refuse": False, "status": 400, "message": None},
    "server_error": {"status": 503, "message": "Service temporarily unavailable (emulated)", "method": None},
    "rate_limit": {"retry_after": 30, "headers": "both", "method": None},
    "slow": {"delay": 1.0, "method": None},
    "drop": {"method": None, "after_acting": False},
    "refuse": {"action": None, "flavor": None, "status": 403, "code": None, "message": None},
}
ACTIONS = frozenset(
    {"hardware", "sleeptime", "pause", "restart", "dev-mode", "secrets", "variables", "storage", "duplicate"}
)
_RATE_LIMIT_HEADERS = ("both", "retry_after", "ratelimit")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Bounds that keep a script sensible: a slow answer is about client timeouts (real seconds), a
# rate limit about a client's patience, a window or a crash delay about emulated days.
MAX_SLOW_DELAY = 300.0
MAX_RETRY_AFTER = 86_400
MAX_FAULT_SECONDS = 365 * 86_400.0
_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault script that makes no sense (unknown kind or option, bad value)."""


@dataclass
class Fault:
    """One scripted fault and how much of it is left."""

    kind: str
    space_id: str | None
    remaining: int | None
    until: float | None
    options: dict[str, Any]
    fault_id: str = field(default_factory=lambda: f"fault-{next(_ids)}")
    used: int = 0

    def active(self, now: float) -> bool:
        """Tell whether the fault still has uses left and its window is open at ``now``."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.until is None or now < self.until

    def applies_to(self, space_id: str | None, method: str | None = None) -> bool:
        """Tell whether the fault concerns this Space and HTTP method."""
        if self.space_id is not None and self.space_id != space_id:
            return False
        wanted = self.options.get("method")
        return wanted is None or method is None or wanted.upper() == method.upper()

    def use(self) -> None:
        """Count one application of the fault."""
        self.used += 1
        if self.remaining is not None:
            self.remaining -= 1

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as JSON-friendly values."""
        return {
            "id": self.fault_id,
            "kind": self.kind,
            "space_id": self.space_id,
            "remaining": self.remaining,
            "until": self.until,
            "used": self.used,
            "options": dict(self.options),
        }


def make_fault(
    kind: str,
    *,
    space_id: str | None,
    count: int | None,
    seconds: float | None,
    now: float,
    options: Mapping[str, Any],
) -> Fault:
    """Validate a fault script and return the fault, or raise FaultError naming what is wrong."""
    if kind not in FAULT_OPTIONS:
        raise FaultError(f"unknown fault kind {kind!r}; known kinds: {', '.join(sorted(FAULT_OPTIONS))}")
    unknown = set(options) - set(FAULT_OPTIONS[kind])
    if unknown:
        raise FaultError(f"fault {kind!r} takes no option {', '.join(sorted(unknown))}")
    if count is not None and not (_is_whole(count) and count >= 1):
        raise FaultError(f"count must be a whole number, 1 or more, not {count!r}")
    if seconds is not None and not (_is_number(seconds) and 0 < seconds <= MAX_FAULT_SECONDS):
        raise FaultError(
            f"seconds must be a number above 0 and at most {MAX_FAULT_SECONDS:g}, not {seconds!r}"
        )

    merged = {**FAULT_OPTIONS[kind], **options}
    _validate_options(kind, merged)
    until = now + seconds if seconds is not None else None
    return Fault(kind=kind, space_id=space_id, remaining=count, until=until, options=merged)


def _validate_options(kind: str, options: dict[str, Any]) -> None:
    """Check every option of a ``kind`` fault, raising FaultError that names the option."""
    for name, value in options.items():
        problem = _OPTION_CHECKS[name](value)
        if problem is not None:
            raise FaultError(f"{kind}: {name} must be {problem}, not {value!r}")

    if kind == "stuck" and options["stage"] not in (BUILDING, APP_STARTING):
        raise FaultError(f"stuck: stage must be {BUILDING} or {APP_STARTING}, not {options['stage']!r}")
    if kind == "no_capacity" and not options["flavor"]:
        raise FaultError("no_capacity needs the flavor that has no capacity")
    if kind == "refuse" and options["action"] not in ACTIONS:
        raise FaultError(
            f"refuse: action must be one of {', '.join(sorted(ACTIONS))}, not {options['action']!r}"
        )
    if kind in ("build_error", "runtime_error") and options["message"] is None:
        raise FaultError(f"{kind}: message must be a string, not None")
    status = options.get("status")
    if kind in ("refuse", "no_capacity") and not (_is_whole(status) and 400 <= status < 600):
        raise FaultError(f"{kind}: status must be an HTTP error status, not {status!r}")
    if kind == "server_error" and not (_is_whole(status) and 500 <= status < 600):
        raise FaultError(f"server_error: status must be 5xx, not {status!r}")


def _is_whole(value: Any) -> TypeGuard[int]:
    # JSON true is an int to Python; a status or a count of true is a mistake.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string"


def _seconds_up_to(limit: float, *, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if optional and value is None:
            return None
        if _is_number(value) and 0 <= value <= limit:
            return None
        return f"a number of seconds from 0 to {limit:g}"

    return check


def _whole_seconds_up_to(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or (_is_whole(value) and 0 <= value <= limit):
            return None
        return f"a whole number of seconds from 0 to {limit} (or null to say none)"

    return check


def _method(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.upper() in _METHODS):
        return None
    return f"one of {', '.join(sorted(_METHODS))} (or null for every method)"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _checked_later(value: Any) -> str | None:
    # The kind decides what the value may be (a stage, an action, a status); see _validate_options.
    return None


def _headers_style(value: Any) -> str | None:
    return None if value in _RATE_LIMIT_HEADERS else f"one of {', '.join(_RATE_LIMIT_HEADERS)}"


_OPTION_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "message": _text_or_none,
    "code": _text_or_none,
    "flavor": _text_or_none,
    "method": _method,
    "after_seconds": _seconds_up_to(MAX_FAULT_SECONDS),
    "delay": _seconds_up_to(MAX_SLOW_DELAY),
    "retry_after": _whole_seconds_up_to(MAX_RETRY_AFTER),
    "headers": _headers_style,
    "refuse": _flag,
    "after_acting": _flag,
    "stage": _checked_later,
    "action": _checked_later,
    "status": _checked_later,
}


class FaultBook:
    """The scripted faults of one emulator, oldest first; not thread-safe (the hub's lock guards it)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Add a fault after the existing ones."""
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def listing(self, now: float) -> list[dict[str, Any]]:
        """Return the active faults as JSON-friendly values."""
        return [fault.to_dict() for fault in self._faults if fault.active(now)]

    def take(self, kind: str, now: float, match: Callable[[Fault], bool]) -> Fault | None:
        """Use up one application of the oldest active ``kind`` fault that ``match`` accepts."""
        for fault in self._faults:
            if fault.kind == kind and fault.active(now) and match(fault):
                fault.use()
                self._prune(now)
                return fault
        return None

    def build_outcome(self, space_id: str, flavor: str | None, now: float, *, build: bool) -> Outcome:
        """Decide what the next build (or, with ``build`` false, app start) of a Space does."""

        def for_space(fault: Fault) -> bool:
            return fault.applies_to(space_id)

        if build:
            lacking = self.take("no_capacity", now, lambda f: for_space(f) and _lacks(f, flavor))
            if lacking is not None:
                return Outcome("no_capacity")
            failed = self.take("build_error", now, for_space)
            if failed is not None:
                return Outcome("build_error", failed.options["message"])
            if self.take("stuck", now, lambda f: for_space(f) and f.options["stage"] == BUILDING):
                return Outcome("stuck_building")
        if self.take("stuck", now, lambda f: for_space(f) and f.options["stage"] == APP_STARTING):
            return Outcome("stuck_starting")
        crash = self.take("runtime_error", now, for_space)
        if crash is not None:
            return Outcome("runtime_error", crash.options["message"], float(crash.options["after_seconds"]))
        return OK

    def _prune(self, now: float) -> None:
        self._faults = [fault for fault in self._faults if fault.active(now)]


def _lacks(fault: Fault, flavor: str | None) -> bool:
    # A refusing no_capacity fault answers the request itself; only the silent one stalls a build.
    return not fault.options["refuse"] and fault.options["flavor"] == flavor
