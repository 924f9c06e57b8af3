"""The rule that decides, from one runtime read, whether a wait is over, goes on, or has failed.

Operators, the sensor and the trigger all wait the same way, so the rule lives here, pure: no I/O,
no clock. A wait fails at once when waiting longer cannot help (an error stage, a paused Space, a
hardware request for another flavor), because spending the whole timeout on a Space that already
failed only delays the bad news and keeps the bill running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from airflow_provider_spaces.hub.errors import SpaceStageError
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage, in_motion, is_error, is_known_stage

__all__ = ["DEAD_END_STAGES", "CheckReason", "CheckStatus", "StageCheck", "check_stage"]

# Stages a Space does not leave on its own: someone has to restart it, or a visitor wake it.
DEAD_END_STAGES: frozenset[SpaceStage] = frozenset(
    {SpaceStage.PAUSED, SpaceStage.STOPPED, SpaceStage.DELETING, SpaceStage.SLEEPING}
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
