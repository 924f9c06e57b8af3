"""Deferred waits: how the waiting operators and the sensor hand a wait to the triggerer, and what
they make of the event that comes back.

A deferred wait keeps poke mode's rules. The task reads the Space once before deferring (already
there: no deferral; already failed: it fails at once); the trigger decides with the same
``check_stage``; and the task turns the event back into the outcome poke mode has: the runtime
as XCom, or a failure naming the Space, its stage, the Hub's message and the request id. The
trigger gets the time left of the task's ``timeout`` as its own deadline; Airflow's trigger
timeout is set a little later, as a backstop should the triggerer itself stall.

Light on purpose (DAG files import it through the operators): the trigger module, and the HTTP
stack with it, is imported only when a task defers or resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_spaces._compat import AirflowException, conf

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from airflow_provider_spaces.triggers.spaces import SpaceStageEvent

__all__ = ["default_deferrable", "defer_wait", "wait_outcome"]

# Deferred, a Space that stays in one stage is read less often, up to this many poll intervals.
MAX_POLL_FACTOR = 4
# How long after the trigger's own deadline Airflow's trigger timeout fires: room for the last read.
_BACKSTOP_SECONDS = 60.0


def default_deferrable() -> bool:
    """Return Airflow's ``[operators] default_deferrable`` setting (False when unset)."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def defer_wait(
    task: BaseOperator,
    *,
    space_id: str,
    spaces_conn_id: str,
    target_stages: Collection[str],
    hardware: str | None,
    seconds_left: float,
    poll_interval: float,
    leaving: str | None = None,
    resume_with: dict[str, Any] | None = None,
) -> NoReturn:
    """Hand the rest of the wait to a ``SpaceStageTrigger``; ``execute_complete`` takes it back.

    :param resume_with: keyword arguments (plain JSON) that ``execute_complete`` gets besides the event.
    """
    from airflow_provider_spaces.triggers.spaces import SpaceStageTrigger

    left = max(0.0, seconds_left)
    trigger = SpaceStageTrigger(
        space_id=space_id,
        deadline=time.time() + left,
        target_stages=list(target_stages),
        hardware=hardware,
        spaces_conn_id=spaces_conn_id,
        poll_interval=poll_interval,
        max_poll_interval=poll_interval * MAX_POLL_FACTOR,
        leaving=leaving,
    )
    task.log.info(
        "Space %s: deferring the wait to the triggerer for at most %.0f s (reads every %.0f to %.0f s)",
        space_id,
        left,
        poll_interval,
        poll_interval * MAX_POLL_FACTOR,
    )
    task.defer(
        trigger=trigger,
        method_name="execute_complete",
        kwargs=resume_with,
        timeout=timedelta(seconds=left + _BACKSTOP_SECONDS),
    )


def wait_outcome(event: Any, *, on_timeout: Callable[[SpaceStageEvent], BaseException]) -> dict[str, Any]:
    """Return the runtime dict of a successful wait, or raise the error the event reports.

    The errors are those poke mode raises: ``failed`` gives a :class:`SpaceStageError`, a Hub
    error a :class:`~airflow_provider_spaces.triggers.spaces.DeferredWaitError` (transient when
    the Hub's error was), ``timeout`` what ``on_timeout`` makes of the event. The task maps them
    as it maps every Hub error.

    :raises AirflowException: the event is not one a ``SpaceStageTrigger`` sends.
    """
    from airflow_provider_spaces.triggers.spaces import InvalidTriggerEventError, SpaceStageEvent, WaitStatus

    try:
        outcome = SpaceStageEvent.from_payload(event)
    except InvalidTriggerEventError as error:
        raise AirflowException(f"The deferred wait came back with {error}: {event!r:.300}") from None

    if outcome.status is WaitStatus.SUCCESS:
        return dict(outcome.runtime or {})
    if outcome.status is WaitStatus.FAILED:
        raise outcome.stage_error()
    if outcome.status is WaitStatus.TIMEOUT:
        raise on_timeout(outcome)
    raise outcome.hub_error()
