"""An Airflow sensor that waits until a Hugging Face Space reaches a stage, on the expected hardware.

Importing this module is cheap: the Hub client, and ``requests`` with it, load on first use.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_spaces._compat import AirflowFailException, AirflowSensorTimeout
from airflow_provider_spaces._deferral import default_deferrable, defer_wait, wait_outcome
from airflow_provider_spaces._tasks import hub_errors_fail_the_task
from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage, space_url
from airflow_provider_spaces.hub.validation import (
    validate_flag,
    validate_flavor,
    validate_space_id,
    validate_stages,
)
from airflow_provider_spaces.hub.waiting import StageTracker, check_stage, describe_state, format_duration
from airflow_provider_spaces.links.spaces import SpaceLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFAULT_SENSOR_TIMEOUT", "SpaceStageSensor"]

# Airflow's own default (seven days) is far too long for a Space; half an hour covers a GPU build.
DEFAULT_SENSOR_TIMEOUT = 30 * 60.0


class SpaceStageSensor(BaseSensorOperator):
    """Wait until a Space is in one of the target stages and, optionally, runs on a given flavor.

    Each poke reads the Space's runtime once. The wait fails at once, with the Hub's own words,
    when waiting longer cannot help: an error stage (``BUILD_ERROR``, ``RUNTIME_ERROR``, ...), a
    stage the Space does not leave by itself (``PAUSED``, ``SLEEPING``, ...) that is not a target,
    or another flavor requested than ``hardware``. Stages this package does not know count as
    "not yet". Such a failure, a final Hub error (bad token, unknown Space) and ``timeout`` all
    honour ``soft_fail`` (the task is skipped instead); transient Hub errors that outlast the
    client's own retries fail the poke and are left to Airflow's retries.

    The task log has one line per change of stage or hardware, with the time it took, and the
    runtime only at debug level on the other pokes. In ``reschedule`` mode every poke runs afresh
    and cannot know what the previous one saw, so each writes one line.

    Deferrable, the first poke is the only one the task makes: when it does not decide the wait,
    the rest of ``timeout`` goes to a :class:`~airflow_provider_spaces.triggers.spaces.SpaceStageTrigger`
    in Airflow's triggerer, which decides with the same rule, reads a Space that stays in one
    stage less often (up to four poke intervals apart), and shares the token's call budget with
    every other wait there. The task resumes with the same result or failure as in poke mode.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param target_stages: the stages that end the wait (templated; default ``["RUNNING"]``).
    :param hardware: the flavor the Space must run on, e.g. ``a10g-large`` (templated); None accepts
        any. The flavor must be the current one, not only requested.
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :param poke_interval: time between two pokes, in seconds or a ``timedelta`` (default 30 s).
    :param timeout: longest wait, in seconds or a ``timedelta`` (default 30 minutes).
    :param deferrable: wait in Airflow's triggerer instead of a worker slot; Airflow's
        ``[operators] default_deferrable`` when None.
    :return: the runtime that reached the target, as a dict (XCom).
    """

    template_fields: Sequence[str] = ("space_id", "target_stages", "hardware")
    operator_extra_links = (SpaceLink(),)
    ui_color = "#ffd21e"

    def __init__(
        self,
        *,
        space_id: str,
        target_stages: Collection[str] = (str(SpaceStage.RUNNING),),
        hardware: str | None = None,
        spaces_conn_id: str = SpacesHook.default_conn_name,
        poke_interval: float | timedelta = 30.0,
        timeout: float | timedelta = DEFAULT_SENSOR_TIMEOUT,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.space_id = space_id
        # Kept as a list, which Airflow renders item by item and serializes as the user wrote it.
        self.target_stages = (
            list(target_stages) if isinstance(target_stages, (tuple, set, frozenset)) else target_stages
        )
        self.hardware = hardware
        self.spaces_conn_id = spaces_conn_id
        self.space_url: str | None = None
        self._targets: frozenset[str] = frozenset()
        self._hook: SpacesHook | None = None
        self._tracker = StageTracker()
        self._last: SpaceRuntime | None = None
        self._started: float | datetime = 0.0

    def execute(self, context: Context) -> Any:
        """Check the arguments, then poke until the target, a dead end or the timeout (or defer)."""
        with hub_errors_fail_the_task():
            self._validate_arguments()
            self._hook = SpacesHook(self.spaces_conn_id)
            self.space_url = space_url(self._hook.get_settings().endpoint, self.space_id)
        self._tracker = StageTracker()
        self._started = self._start_time(context)
        try:
            return super().execute(context)
        except AirflowSensorTimeout as error:
            raise AirflowSensorTimeout(self._timeout_message()) from error
        finally:
            self._hook.close()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read the runtime once: done, not yet, or a failure that no wait can mend."""
        assert self._hook is not None, "poke runs only from execute"
        with hub_errors_fail_the_task():
            runtime = self._hook.get_space_runtime(self.space_id, paced=True)
        self._last = runtime

        check = check_stage(runtime, target_stages=self._targets, hardware=self.hardware)
        line = self._tracker.observe(runtime, self._elapsed())
        if line is not None:
            self.log.info("%s", line)
        else:
            self.log.debug("%s", check.message)

        if check.failed:
            raise AirflowFailException(check.message)
        if check.reached:
            return PokeReturnValue(is_done=True, xcom_value=runtime.to_dict())
        if self.deferrable:
            self._defer()
        return False

    def _defer(self) -> None:
        defer_wait(
            self,
            space_id=self.space_id,
            spaces_conn_id=self.spaces_conn_id,
            target_stages=sorted(self._targets),
            hardware=self.hardware,
            seconds_left=self.timeout - self._elapsed(),
            poll_interval=float(self.poke_interval),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after a deferred wait: the runtime the trigger saw, or the failure poke mode has."""
        with hub_errors_fail_the_task():
            self._validate_arguments()
            return wait_outcome(event, on_timeout=lambda outcome: AirflowSensorTimeout(outcome.message))

    def _validate_arguments(self) -> None:
        self.space_id = validate_space_id(self.space_id, argument="space_id")
        self._targets = validate_stages(self.target_stages, argument="target_stages")
        if self.hardware is not None:
            self.hardware = validate_flavor(self.hardware, argument="hardware")
        self.deferrable = validate_flag(self.deferrable, argument="deferrable")

    def _start_time(self, context: Context) -> float | datetime:
        if not self.reschedule:
            return time.monotonic()
        # Each rescheduled poke is a new run of the task: count from the first one.
        first = context["ti"].get_first_reschedule_date(context)
        return first if first is not None else datetime.now(timezone.utc)

    def _elapsed(self) -> float:
        if isinstance(self._started, datetime):
            return (datetime.now(timezone.utc) - self._started).total_seconds()
        return time.monotonic() - self._started

    def _timeout_message(self) -> str:
        goal = " or ".join(sorted(self._targets)) + (f" on {self.hardware}" if self.hardware else "")
        seen = describe_state(self._last) if self._last is not None else "never read"
        return (
            f"Space {self.space_id} did not become {goal} within {format_duration(self.timeout)}: "
            f"waited {format_duration(self._elapsed())}, last seen {seen}. See {self.space_url}"
        )
