"""``SpaceStageTrigger``: wait in Airflow's triggerer until a Space reaches a stage.

One triggerer process runs many of these on one event loop. They share the loop's connection pool
and, per token, one call budget (``hub.pacing``), so that a thousand waits slow down together
instead of collecting 429s; each also polls its own Space less often while it stays in one stage.
Whether a read ends the wait is decided by :func:`~airflow_provider_spaces.hub.waiting.check_stage`,
the rule poke mode uses too.

The trigger yields exactly one event, a :class:`SpaceStageEvent` as a plain dict: ``status``
(``success``, ``failed``, ``timeout`` or ``error``), ``reason``, ``message``, ``space_id``, the last
``runtime`` read (its XCom dict) and the ``request_id`` of the answer that decided. The task's
``execute_complete`` reads it back with :meth:`SpaceStageEvent.from_payload`, which refuses an
event with missing or unknown fields. Any exception on the way becomes an ``error`` event, whose
reason says whether it may pass (``transient_hub_error``) or needs a person (``final_hub_error``,
``unexpected_error``).

The operators import this module only when they defer. It imports the hook and the asynchronous
client (httpx) at once, so that the first trigger in a triggerer does not import them on the event
loop, where every other trigger would wait for it.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.aio import AsyncSpacesClient  # imported here, off the event loop
from airflow_provider_spaces.hub.errors import HubError, InvalidArgumentError, SpaceStageError
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage
from airflow_provider_spaces.hub.pacing import PollSchedule
from airflow_provider_spaces.hub.validation import validate_space_id
from airflow_provider_spaces.hub.waiting import StageCheck, StageTracker, check_stage, describe_state

__all__ = [
    "DEFAULT_MAX_POLL_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "DeferredWaitError",
    "InvalidTriggerEventError",
    "SpaceStageEvent",
    "SpaceStageTrigger",
    "WaitStatus",
]

DEFAULT_POLL_INTERVAL = 30.0
DEFAULT_MAX_POLL_INTERVAL = 120.0
# The last read may end this long after the deadline; without it a wait whose turn in the budget
# comes late would time out without saying where the Space was.
_LAST_READ_SECONDS = 10.0


class WaitStatus(str, Enum):
    """How a deferred wait ended."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"

    def __str__(self) -> str:
        return str(self.value)


class DeferredWaitError(HubError):
    """A deferred wait ended on an error the trigger met: a Hub error, or an unexpected one.

    Its message is the trigger's, which names the Space and quotes the Hub's own words and
    request id. It is transient (Airflow's retries may help) when the Hub's error was.
    """

    def __init__(self, message: str, *, space_id: str, transient: bool) -> None:
        super().__init__(message, space_id=space_id)
        self.transient_error = transient

    @property
    def is_transient(self) -> bool:
        """Tell whether the error the trigger met may pass by itself."""
        return self.transient_error


class InvalidTriggerEventError(ValueError):
    """An event that a :class:`SpaceStageTrigger` cannot have sent (fields missing, unknown, mistyped)."""


# Reasons of the events that are not a stage check's.
REASON_DEADLINE = "deadline"
REASON_FINAL_HUB_ERROR = "final_hub_error"
REASON_TRANSIENT_HUB_ERROR = "transient_hub_error"
REASON_UNEXPECTED_ERROR = "unexpected_error"

_FIELDS = ("status", "reason", "message", "space_id", "runtime", "request_id")


@dataclass(frozen=True)
class SpaceStageEvent:
    """The one event of a :class:`SpaceStageTrigger`, and what the task makes of it."""

    status: WaitStatus
    reason: str
    message: str
    space_id: str
    runtime: dict[str, Any] | None = None
    request_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """Return the event as the plain JSON dict the trigger yields."""
        return {
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
            "space_id": self.space_id,
            "runtime": self.runtime,
            "request_id": self.request_id,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> SpaceStageEvent:
        """Read an event back, refusing anything the trigger would not send.

        :raises InvalidTriggerEventError: not a dict, a field missing or unknown, or of the wrong type.
        """
        if not isinstance(payload, Mapping):
            raise InvalidTriggerEventError(f"expected the trigger's event dict, got {type(payload).__name__}")
        _check_fields(payload)

        try:
            status = WaitStatus(payload["status"])
        except ValueError:
            raise InvalidTriggerEventError(f"unknown event status {payload['status']!r}") from None
        _check_types(payload)
        runtime = dict(payload["runtime"]) if payload["runtime"] is not None else None
        return cls(
            status, payload["reason"], payload["message"], payload["space_id"], runtime, payload["request_id"]
        )

    @property
    def stage(self) -> str | None:
        """Return the stage of the last read, when there was one."""
        return self.runtime.get("stage") if self.runtime else None

    @property
    def transient(self) -> bool:
        """Tell whether trying the task again may end otherwise.

        True for a timeout, a passing Hub error and an unexpected one (a connection not defined
        yet, say), which poke mode too leaves to Airflow's retries; False for a final Hub error.
        """
        return self.status is WaitStatus.TIMEOUT or self.reason in (
            REASON_TRANSIENT_HUB_ERROR,
            REASON_UNEXPECTED_ERROR,
        )

    def hub_error(self) -> DeferredWaitError:
        """Return the error that reports an ``error`` event, transient when the Hub's error was."""
        return DeferredWaitError(self.message, space_id=self.space_id, transient=self.transient)

    def stage_error(self) -> SpaceStageError:
        """Return the error that reports a ``failed`` wait: the stage, the Hub's message, the request id."""
        runtime = self.runtime or {}
        return SpaceStageError(
            self.message,
            space_id=self.space_id,
            stage=str(runtime.get("stage") or "unknown"),
            hub_message=runtime.get("error_message"),
            url=runtime.get("url") or None,
            request_id=self.request_id,
            reason=self.reason,
        )


def _check_fields(payload: Mapping[str, Any]) -> None:
    missing = [name for name in _FIELDS if name not in payload]
    unknown = sorted(str(name) for name in payload if name not in _FIELDS)
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise InvalidTriggerEventError(f"malformed trigger event ({'; '.join(parts)})")


def _check_types(payload: Mapping[str, Any]) -> None:
    for name in ("reason", "message", "space_id"):
        if not isinstance(payload[name], str):
            raise InvalidTriggerEventError(f"event field {name!r} must be a string")
    if payload["runtime"] is not None and not isinstance(payload["runtime"], Mapping):
        raise InvalidTriggerEventError("event field 'runtime' must be a dict or null")
    if payload["request_id"] is not None and not isinstance(payload["request_id"], str):
        raise InvalidTriggerEventError("event field 'request_id' must be a string or null")


class SpaceStageTrigger(BaseTrigger):
    """Wait until a Space reaches one of ``target_stages`` (on ``hardware``, when given).

    Every keyword is a plain JSON value; the token is never among them; the trigger reads the
    connection itself, in :meth:`run`.

    :param space_id: the Space to watch, ``namespace/name``.
    :param deadline: when the wait gives up, in seconds since the Unix epoch (wall clock, since
        the triggerer may run on another machine than the task).
    :param target_stages: the stages that end the wait successfully.
    :param hardware: the flavor the Space must run on, for a wait after a hardware request.
    :param spaces_conn_id: the Airflow connection to the Hub.
    :param poll_interval: seconds between reads while the Space changes, and before the first one
        (the task has just read the Space when it defers).
    :param max_poll_interval: the longest gap between reads of a Space that stays in one stage.
    :param leaving: the stage the Space was in when the task asked the Hub to move it (a hardware
        request, a restart). The Hub's first answers may still show it; until the Space shows
        another stage, that one does not fail the wait (the deadline still ends it).
    """

    def __init__(
        self,
        *,
        space_id: str,
        deadline: float,
        target_stages: Iterable[str] = (SpaceStage.RUNNING,),
        hardware: str | None = None,
        spaces_conn_id: str = "huggingface_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        leaving: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves it untyped
        self.space_id = validate_space_id(space_id)
        if (
            isinstance(deadline, bool)
            or not isinstance(deadline, (int, float))
            or not math.isfinite(deadline)
        ):
            raise InvalidArgumentError("deadline", f"must be seconds since the epoch, not {deadline!r}")
        self.deadline = float(deadline)
        self.target_stages = [
            str(stage) for stage in ([target_stages] if isinstance(target_stages, str) else target_stages)
        ]
        if not self.target_stages:
            raise InvalidArgumentError("target_stages", "must name at least one stage")
        self.hardware = str(hardware) if hardware is not None else None
        self.spaces_conn_id = spaces_conn_id
        # Checked here, so that a bad interval fails the task before it defers.
        PollSchedule(poll_interval, max_poll_interval)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.leaving = str(leaving) if leaving is not None else None
        self._last: SpaceRuntime | None = None
        self._client: AsyncSpacesClient | None = None

    @property
    def log(self) -> Any:
        """Return the one logger every trigger of this class writes to.

        Airflow's triggerer tells the triggers' lines apart by context variables it binds for
        each trigger, not by logger, so a triggerer with a thousand waits needs one logger for
        them, not a thousand (each costs about a kilobyte).
        """
        return type(self).logger()

    def __repr__(self) -> str:
        return f"SpaceStageTrigger(space_id={self.space_id!r}, target_stages={self.target_stages!r})"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the JSON keywords that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "space_id": self.space_id,
                "deadline": self.deadline,
                "target_stages": list(self.target_stages),
                "hardware": self.hardware,
                "spaces_conn_id": self.spaces_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "leaving": self.leaving,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Read the Space until the wait is decided, then yield the one event that says how."""
        try:
            event = await self._watch()
        except Exception as error:
            # Whatever went wrong, the task hears of it as an event rather than waiting for its timeout.
            event = self._error_event(error)
        log = self.log.info if event.status is WaitStatus.SUCCESS else self.log.warning
        log("Space %s: wait ended (%s, %s): %s", self.space_id, event.status, event.reason, event.message)
        yield TriggerEvent(event.to_payload())  # type: ignore[no-untyped-call]  # as above

    async def _watch(self) -> SpaceStageEvent:
        schedule = PollSchedule(self.poll_interval, self.max_poll_interval)
        self.log.info(
            "Watching Space %s until it is %s, at most until %s",
            self.space_id,
            self._goal(),
            _utc(self.deadline),
        )
        leaving = self.leaving
        tracker, started = StageTracker(), time.monotonic()
        # The task read the Space just before deferring: as in poke mode, the next read comes one
        # interval later. It also keeps the event from coming back within a second or two of the
        # deferral, where Airflow's scheduler can still hold the worker's report of the
        # deferral and take it for the end of the resumed task, which it then fails.
        await asyncio.sleep(min(self.poll_interval, max(0.0, self._time_left())))
        async with SpacesHook(self.spaces_conn_id).aclient() as client:
            self._client = client
            while True:
                try:
                    runtime = await _within(max(self._time_left(), _LAST_READ_SECONDS), self._read(client))
                except asyncio.TimeoutError:
                    return self._timeout_event()
                check = check_stage(runtime, target_stages=self.target_stages, hardware=self.hardware)
                # Kept for the events that end without a check (a timeout, an error): without the
                # Hub's whole payload, which a thousand waits would otherwise hold between reads.
                self._last = runtime.without_payload()
                self._log_progress(tracker, check, time.monotonic() - started)
                if leaving is not None and str(runtime.stage) != leaving:
                    leaving = None
                if check.reached or (check.failed and leaving is None):
                    return self._check_event(check)
                left = self._time_left()
                if left <= 0:
                    return self._timeout_event()
                del runtime, check
                await asyncio.sleep(min(schedule.next_wait(_state_of(self._last)), left))

    async def _read(self, client: AsyncSpacesClient) -> SpaceRuntime:
        """Read the Space in this token's turn, taken before the read begins.

        Most of a fleet's waits spend their time queued for a turn: queued this way, each holds
        this coroutine and the turn's, not a request half built.
        """
        await client.take_turn()
        return await client.get_space_runtime(self.space_id, paced=True, turn_taken=True)

    def _time_left(self) -> float:
        return self.deadline - time.time()

    def _goal(self) -> str:
        return " or ".join(self.target_stages) + (f" on {self.hardware}" if self.hardware else "")

    def _log_progress(self, tracker: StageTracker, check: StageCheck, elapsed: float) -> None:
        """Log a change of the Space's stage or hardware at info level, a read without one at debug."""
        line = tracker.observe(check.runtime, elapsed)
        if line is not None:
            self.log.info("%s", line)
        else:
            self.log.debug("%s", check.message)

    def _check_event(self, check: StageCheck) -> SpaceStageEvent:
        status = WaitStatus.SUCCESS if check.reached else WaitStatus.FAILED
        return SpaceStageEvent(
            status,
            str(check.reason),
            check.message,
            self.space_id,
            check.runtime.to_dict(),
            check.runtime.request_id,
        )

    def _timeout_event(self) -> SpaceStageEvent:
        last = self._last
        seen = describe_state(last) if last else "not read yet"
        message = (
            f"Space {self.space_id} did not become {self._goal()} by {_utc(self.deadline)}; last seen {seen}"
        )
        if last is not None:
            message += f" (see {last.url}" + (f"; request id {last.request_id})" if last.request_id else ")")
        return SpaceStageEvent(
            WaitStatus.TIMEOUT,
            REASON_DEADLINE,
            message,
            self.space_id,
            last.to_dict() if last else None,
            last.request_id if last else None,
        )

    def _error_event(self, error: Exception) -> SpaceStageEvent:
        if isinstance(error, HubError):
            reason = REASON_TRANSIENT_HUB_ERROR if error.is_transient else REASON_FINAL_HUB_ERROR
            message = str(error)
        else:
            reason = REASON_UNEXPECTED_ERROR
            message = f"{type(error).__name__}: {error}"
        if self._client is not None:
            # The client's errors never hold the token; anything else raised on the way might.
            message = self._client.redact(message)
        last = self._last
        return SpaceStageEvent(
            WaitStatus.ERROR,
            reason,
            f"Waiting for Space {self.space_id} failed: {message}",
            self.space_id,
            last.to_dict() if last else None,
            getattr(error, "request_id", None) or (last.request_id if last else None),
        )


if sys.version_info >= (3, 11):

    async def _within(seconds: float, read: Awaitable[SpaceRuntime]) -> SpaceRuntime:
        """Await ``read`` for at most ``seconds``; raise ``asyncio.TimeoutError`` after that.

        ``asyncio.timeout`` cancels the read in place; ``asyncio.wait_for`` (before 3.11) would
        wrap it in a task of its own, about half a kilobyte more per waiting trigger.
        """
        async with asyncio.timeout(seconds):
            return await read

else:  # pragma: no cover - Python 3.10

    async def _within(seconds: float, read: Awaitable[SpaceRuntime]) -> SpaceRuntime:
        return await asyncio.wait_for(read, seconds)


def _state_of(runtime: SpaceRuntime) -> tuple[object, object]:
    """Return what a poll schedule starts over on: a change of stage or of hardware."""
    return (runtime.stage, runtime.hardware)


def _utc(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_seconds))
