"""The rule that decides, from one runtime read, whether a wait is over, goes on, or has failed.

Operators, the sensor and the trigger all wait the same way, so the rule lives here, pure: no I/O,
no clock. A wait fails at once when waiting longer cannot help (an error stage, a paused Space, a
hardware request for another flavor), because spending the whole timeout on a Space that already
failed only delays the bad news and keeps the bill running.

Beside the rule: whether a runtime shows a Space that costs money (:func:`billing_stopped`), which
the down moves use to decide whether a failure still leaves money running, and
:class:`StageTracker`, which tells the waits when to write a progress line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from airflow_provider_spaces.hub.catalog import is_paid_flavor
from airflow_provider_spaces.hub.errors import SpaceStageError
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage, in_motion, is_error, is_known_stage

__all__ = [
    "BILLED_STAGES",
    "DEAD_END_STAGES",
    "CheckReason",
    "CheckStatus",
    "StageCheck",
    "StageTracker",
    "billing_stopped",
    "check_stage",
    "describe_state",
    "format_duration",
    "is_billing",
    "will_bill",
]

# Stages a Space does not leave on its own: someone has to restart it, or a visitor wake it.
DEAD_END_STAGES: frozenset[SpaceStage] = frozenset(
    {SpaceStage.PAUSED, SpaceStage.STOPPED, SpaceStage.DELETING, SpaceStage.SLEEPING}
)
# The Hub bills a Space on paid hardware while it starts or runs; building, pausing and sleeping
# are free, and so are error stages.
BILLED_STAGES: frozenset[SpaceStage] = frozenset(
    {
        SpaceStage.RUNNING,
        SpaceStage.RUNNING_BUILDING,
        SpaceStage.APP_STARTING,
        SpaceStage.RUNNING_APP_STARTING,
    }
)


class CheckStatus(str, Enum):
    """The verdict of one check."""

    REACHED = "reached"
    WAITING = "waiting"
    FAILED = "failed"

    def __str__(self) -> str:
        return str(self.value)


class CheckReason(str, Enum):
    """Why the check came out as it did; stable strings for trigger events and tests."""

    REACHED = "reached"
    IN_MOTION = "in_motion"
    HARDWARE_PENDING = "hardware_pending"
    UNKNOWN_STAGE = "unknown_stage"
    NOT_YET = "not_yet"
    ERROR_STAGE = "error_stage"
    DEAD_END = "dead_end"
    HARDWARE_MISMATCH = "hardware_mismatch"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class StageCheck:
    """The outcome of :func:`check_stage`: a status, a machine reason and a message for people."""

    status: CheckStatus
    reason: CheckReason
    message: str
    runtime: SpaceRuntime

    @property
    def reached(self) -> bool:
        """Tell whether the wait is over and successful."""
        return self.status is CheckStatus.REACHED

    @property
    def failed(self) -> bool:
        """Tell whether the wait must stop now with an error."""
        return self.status is CheckStatus.FAILED

    def to_error(self) -> SpaceStageError:
        """Return the error that reports this failed check."""
        runtime = self.runtime
        return SpaceStageError(
            self.message,
            space_id=runtime.space_id,
            stage=str(runtime.stage),
            hub_message=runtime.error_message,
            url=runtime.url or None,
            request_id=runtime.request_id,
            reason=str(self.reason),
        )

    def raise_if_failed(self) -> None:
        """Raise :class:`SpaceStageError` when the check failed."""
        if self.failed:
            raise self.to_error()


def check_stage(
    runtime: SpaceRuntime,
    *,
    target_stages: Iterable[str] = frozenset({SpaceStage.RUNNING}),
    hardware: str | None = None,
) -> StageCheck:
    """Decide whether ``runtime`` has reached one of ``target_stages`` (on ``hardware``, if given).

    Failed: an error stage that is not a target; a stage the Space does not leave on its own
    (paused, stopped, deleting, sleeping) that is not a target; or ``hardware`` expected while the
    Space asked for another flavor, so nothing will bring it there. Reached: a target stage and,
    when ``hardware`` is given, ``hardware`` is the flavor it runs on now. Anything else, unknown
    stages included, means waiting.
    """
    targets = {str(stage) for stage in target_stages}
    stage = str(runtime.stage)

    if stage in targets:
        return _in_target(runtime, hardware)
    if is_error(stage):
        return _failed(runtime, CheckReason.ERROR_STAGE, _error_stage_message(runtime))
    if SpaceStage.parse(stage) in DEAD_END_STAGES:
        wanted = " or ".join(sorted(targets))
        message = f"Space {runtime.space_id} is {stage} and will not become {wanted} by itself"
        return _failed(runtime, CheckReason.DEAD_END, _with_context(message, runtime))
    if hardware is not None and runtime.requested_hardware not in (None, hardware):
        return _failed(runtime, CheckReason.HARDWARE_MISMATCH, _mismatch_message(runtime, hardware))
    return _waiting(runtime, hardware)


def _in_target(runtime: SpaceRuntime, hardware: str | None) -> StageCheck:
    if hardware is None or runtime.hardware == hardware:
        on = f" on {runtime.hardware}" if runtime.hardware else ""
        message = f"Space {runtime.space_id} is {runtime.stage}{on}"
        return StageCheck(CheckStatus.REACHED, CheckReason.REACHED, message, runtime)

    if runtime.requested_hardware != hardware:
        # Nothing asked the Hub for this flavor (or something asked for another): it will not come.
        return _failed(runtime, CheckReason.HARDWARE_MISMATCH, _mismatch_message(runtime, hardware))
    message = (
        f"Space {runtime.space_id} is {runtime.stage} on {runtime.hardware or 'no hardware yet'}; "
        f"{hardware} is requested and not there yet"
    )
    return StageCheck(CheckStatus.WAITING, CheckReason.HARDWARE_PENDING, message, runtime)


def _waiting(runtime: SpaceRuntime, hardware: str | None) -> StageCheck:
    stage = runtime.stage
    goal = f" (waiting for {hardware})" if hardware else ""
    if not is_known_stage(stage):
        message = (
            f"Space {runtime.space_id} reports stage {stage}, which this package does not know; "
            f"not treating it as an error, still waiting{goal}"
        )
        return StageCheck(CheckStatus.WAITING, CheckReason.UNKNOWN_STAGE, message, runtime)
    reason = CheckReason.IN_MOTION if in_motion(stage) else CheckReason.NOT_YET
    message = f"Space {runtime.space_id} is {stage}{goal}"
    return StageCheck(CheckStatus.WAITING, reason, message, runtime)


def _failed(runtime: SpaceRuntime, reason: CheckReason, message: str) -> StageCheck:
    return StageCheck(CheckStatus.FAILED, reason, message, runtime)


def _error_stage_message(runtime: SpaceRuntime) -> str:
    said = f": {runtime.error_message}" if runtime.error_message else " (the Hub gave no error message)"
    return _with_context(f"Space {runtime.space_id} is in {runtime.stage}{said}", runtime)


def _mismatch_message(runtime: SpaceRuntime, hardware: str) -> str:
    requested = runtime.requested_hardware or "no flavor"
    message = (
        f"Space {runtime.space_id} is {runtime.stage} on {runtime.hardware or 'no hardware'} with "
        f"{requested} requested, so it will not move to {hardware} by itself; request {hardware} first"
    )
    return _with_context(message, runtime)


def _with_context(message: str, runtime: SpaceRuntime) -> str:
    details = [f"see {runtime.url}"] if runtime.url else []
    if runtime.request_id:
        details.append(f"request id {runtime.request_id}")
    return f"{message} ({'; '.join(details)})" if details else message


# -- money -------------------------------------------------------------------------------------


def is_billing(runtime: SpaceRuntime) -> bool:
    """Tell whether the Space may cost money now: starting or running on paid hardware.

    A stage this package does not know counts as billed on paid hardware, and so does a flavor it
    does not know: code that stops the money must rather act once too often than leave a bill
    running.
    """
    stage = SpaceStage.parse(str(runtime.stage))
    billed_stage = stage in BILLED_STAGES or not is_known_stage(stage)
    return billed_stage and is_paid_flavor(_plain(runtime.hardware))


def will_bill(runtime: SpaceRuntime) -> bool:
    """Tell whether the Space will start costing money by itself.

    That is: paid hardware is requested, and the Space is in a stage it leaves on its own (not
    paused, sleeping, stopped or failed).
    """
    stage = SpaceStage.parse(str(runtime.stage))
    stays = stage in DEAD_END_STAGES or is_error(stage)
    return is_paid_flavor(_plain(runtime.requested_hardware)) and not stays


def billing_stopped(runtime: SpaceRuntime) -> bool:
    """Tell whether the Space neither costs money now nor will by itself, as far as ``runtime`` shows."""
    return not is_billing(runtime) and not will_bill(runtime)


# -- progress ----------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Write a duration for a log line: ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe_state(runtime: SpaceRuntime) -> str:
    """Write where a Space is: its stage, the flavor it runs on, and the one it asked for if other."""
    return _describe(_state_of(runtime))


_State = tuple[str, str | None, str | None]


def _state_of(runtime: SpaceRuntime) -> _State:
    return (str(runtime.stage), _plain(runtime.hardware), _plain(runtime.requested_hardware))


def _describe(state: _State) -> str:
    stage, current, requested = state
    text = f"{stage} on {current}" if current else stage
    if requested and requested != current:
        text += f", {requested} requested"
    return text


def _plain(value: str | None) -> str | None:
    return None if value is None else str(value)


class StageTracker:
    """Notice when a Space's stage or hardware changes between reads, and for how long it held.

    The waits write one line per change, not one per poll; this class keeps that notion of "a
    change" the same for the hook's wait loop and the sensor. ``elapsed`` is measured by the
    caller, on whatever clock it waits with.
    """

    # Slots: a triggerer keeps one tracker per waiting trigger.
    __slots__ = ("_last", "_since")

    def __init__(self) -> None:
        self._last: _State | None = None
        self._since = 0.0

    def observe(self, runtime: SpaceRuntime, elapsed: float) -> str | None:
        """Return a progress line when ``runtime`` differs from the last one seen, else None."""
        state = _state_of(runtime)
        if state == self._last:
            return None

        line = f"Space {runtime.space_id} is {_describe(state)} ({format_duration(elapsed)} into the wait"
        if self._last is not None:
            line += f"; {_describe(self._last)} for {format_duration(elapsed - self._since)}"
        self._last, self._since = state, elapsed
        return line + ")"
