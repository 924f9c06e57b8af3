"""Airflow operators that change a Hugging Face Space: hardware, pause, restart, sleep time,
secrets, variables and duplicates.

They decide *when* to call the Hub; :class:`~airflow_provider_spaces.hooks.spaces.SpacesHook`
does the calling. Each one:

- checks its arguments, templated ones rendered, before any request, and fails naming the
  argument;
- reads the Space first and sends nothing when it is already where the task would put it, so a
  task can always be run again;
- for hardware, restarts and duplicates, waits (by default) until the Space runs on the flavor
  asked for, failing at once on an error stage and after ``timeout`` seconds at the latest; with
  ``deferrable=True`` the wait runs in Airflow's triggerer (see ``_deferral``), same outcome;
- fails without Airflow retries on a final Hub error, and leaves transient ones to Airflow's
  retries;
- returns the Space's runtime as a small JSON dict (XCom) and links to the Space's page.

Importing this module is cheap: the Hub client, and ``requests`` with it, load on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_spaces._compat import AirflowException
from airflow_provider_spaces._deferral import default_deferrable, defer_wait, wait_outcome
from airflow_provider_spaces._tasks import hub_errors_fail_the_task, mask_values, optional_sleep_time
from airflow_provider_spaces.hooks.spaces import SpacesHook, wait_timeout_error
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR, is_paid_flavor
from airflow_provider_spaces.hub.costs import PriceList
from airflow_provider_spaces.hub.errors import (
    HubError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SpaceWaitTimeout,
)
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage, space_url
from airflow_provider_spaces.hub.validation import (
    validate_flag,
    validate_flavor,
    validate_keys,
    validate_seconds,
    validate_space_id,
    validate_values,
    validate_visibility,
)
from airflow_provider_spaces.hub.waiting import DEAD_END_STAGES, billing_stopped, check_stage, describe_state
from airflow_provider_spaces.links.spaces import SpaceLink, SpaceSettingsLink

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_spaces.triggers.spaces import SpaceStageEvent

__all__ = [
    "DEFAULT_DOWNGRADE_RETRY",
    "DEFAULT_DOWNGRADE_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "SpaceDuplicateOperator",
    "SpaceHardwareDowngradeOperator",
    "SpaceHardwareUpgradeOperator",
    "SpacePauseOperator",
    "SpaceRestartOperator",
    "SpaceSecretsOperator",
    "SpaceSleepTimeOperator",
    "SpaceVariablesOperator",
]

# A GPU build with a large image takes minutes; half an hour leaves room without hiding a stall.
DEFAULT_TIMEOUT = 30 * 60.0
DEFAULT_DOWNGRADE_TIMEOUT = 15 * 60.0
# On top of the client's own retries (two minutes at most per call): a Hub outage of a few minutes
# must not leave a GPU running, and a longer one is for a person and Airflow's retries to handle.
DEFAULT_DOWNGRADE_RETRY = 10 * 60.0
_LONGEST_ROUND_PAUSE = 60.0
# Two reads a minute per Space: twenty waiting Spaces stay well inside a free token's quota of
# 1,000 calls per five minutes.
DEFAULT_POLL_INTERVAL = 30.0
_NEVER_SLEEP = -1
_RUNNING = (str(SpaceStage.RUNNING),)

Seconds = float | timedelta


class _SpaceOperator(BaseOperator):
    """What every Space operator shares: the Space, the connection, the link, error handling.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    """

    template_fields: Sequence[str] = ("space_id",)
    operator_extra_links = (SpaceLink(), SpaceSettingsLink())
    ui_color = "#ffd21e"

    def __init__(
        self, *, space_id: str, spaces_conn_id: str = SpacesHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.space_id = space_id
        self.spaces_conn_id = spaces_conn_id
        # Known before the first request, so that the link works for a task that fails on the Hub.
        self.space_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the arguments, then act on the Space; return its runtime as a small dict."""
        return self.with_hook(self.act)

    def with_hook(self, work: Callable[[SpacesHook], dict[str, Any]]) -> dict[str, Any]:
        """Check the arguments, then do ``work`` with a hook, failing as every task here fails."""
        with hub_errors_fail_the_task():
            self.validate_arguments()
            hook = SpacesHook(self.spaces_conn_id)
            try:
                self.space_url = space_url(hook.get_settings().endpoint, self.linked_space_id)
                return work(hook)
            finally:
                hook.close()

    @property
    def linked_space_id(self) -> str:
        """Return the Space the task's link points at."""
        return str(self.space_id)

    def validate_arguments(self) -> None:
        """Check every argument, templated ones rendered, before anything is sent.

        :raises InvalidArgumentError: naming the first bad argument.
        """
        self.space_id = validate_space_id(self.space_id, argument="space_id")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Do the task's work with ``hook`` and return the XCom value."""
        raise NotImplementedError

    def read_or_none(self, hook: SpacesHook) -> SpaceRuntime | None:
        """Read the runtime, or return None (logged) when the Hub cannot say; for down moves."""
        try:
            return hook.get_space_runtime(self.space_id)
        except HubError as error:
            self.log.warning(
                "Could not read Space %s, going on without knowing its stage: %s", self.space_id, error
            )
            return None


class _WaitingOperator(_SpaceOperator):
    """A Space operator that can wait until the Space runs where it was sent.

    :param wait_for_running: wait until the Space is ``RUNNING`` on the flavor asked for.
    :param timeout: longest wait, in seconds or as a ``timedelta``.
    :param poll_interval: time between two reads of the runtime, in seconds or a ``timedelta``.
    :param deferrable: hand the wait to Airflow's triggerer instead of holding a worker slot (see
        :mod:`~airflow_provider_spaces.triggers.spaces`); Airflow's ``[operators]
        default_deferrable`` when None.
    """

    def __init__(
        self,
        *,
        wait_for_running: bool = True,
        timeout: Seconds = DEFAULT_TIMEOUT,
        poll_interval: Seconds = DEFAULT_POLL_INTERVAL,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_running = wait_for_running
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._timeout_seconds = 0.0
        self._poll_seconds = 0.0

    def validate_arguments(self) -> None:
        """Check the Space id and the wait's bounds."""
        super().validate_arguments()
        self.wait_for_running = validate_flag(self.wait_for_running, argument="wait_for_running")
        self._timeout_seconds = validate_seconds(self.timeout, argument="timeout")
        self._poll_seconds = validate_seconds(self.poll_interval, argument="poll_interval")
        self.deferrable = validate_flag(self.deferrable, argument="deferrable")

    def wait_until_running(
        self,
        hook: SpacesHook,
        runtime: SpaceRuntime,
        hardware: str | None,
        *,
        leaving: str | None = None,
        space_id: str | None = None,
    ) -> SpaceRuntime:
        """Wait (when asked to) until the Space is ``RUNNING``, on ``hardware`` when given.

        ``leaving``: the stage the Space was in before this task moved it (see
        :meth:`SpacesHook.wait_for_stage`); None when the task sent nothing.
        """
        if not self.wait_for_running:
            return runtime
        if self.deferrable:
            return self._check_or_defer(
                runtime, hardware, leaving=leaving, space_id=space_id or self.space_id
            )
        return hook.wait_for_stage(
            space_id or self.space_id,
            hardware=hardware,
            timeout=self._timeout_seconds,
            poll_interval=self._poll_seconds,
            runtime=runtime,
            leaving=leaving,
        )

    def _check_or_defer(
        self, runtime: SpaceRuntime, hardware: str | None, *, leaving: str | None, space_id: str
    ) -> SpaceRuntime:
        """Return ``runtime`` when it already ends the wait, raise when it already failed, else defer."""
        check = check_stage(runtime, target_stages=_RUNNING, hardware=hardware)
        if check.reached:
            self.log.info("%s; no need to wait", check.message)
            return runtime
        if check.failed and (leaving is None or str(runtime.stage) != leaving):
            raise check.to_error()

        defer_wait(
            self,
            space_id=space_id,
            spaces_conn_id=self.spaces_conn_id,
            target_stages=_RUNNING,
            hardware=hardware,
            seconds_left=self._timeout_seconds,
            poll_interval=self._poll_seconds,
            leaving=leaving,
            resume_with={"hardware": hardware},
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], hardware: str | None = None
    ) -> dict[str, Any]:
        """Resume after a deferred wait: the runtime the trigger saw, or the failure poke mode has.

        :param hardware: the flavor the wait was for, as the task deferred it.
        """
        return self.with_hook(lambda hook: self.resume(hook, event, hardware))

    def resume(self, hook: SpacesHook, event: dict[str, Any], hardware: str | None) -> dict[str, Any]:
        """Return the XCom value of a deferred wait that came back with ``event``."""
        return wait_outcome(event, on_timeout=lambda outcome: self._wait_timeout(outcome, hardware))

    def _wait_timeout(self, outcome: SpaceStageEvent, hardware: str | None) -> BaseException:
        return wait_timeout_error(
            outcome.space_id,
            last_stage=outcome.stage,
            url=(outcome.runtime or {}).get("url"),
            targets=_RUNNING,
            hardware=hardware,
            waited=self._timeout_seconds,
        )


class SpaceHardwareUpgradeOperator(_WaitingOperator):
    """Move a Space to paid hardware (a GPU, usually) and wait until it really runs there.

    Nothing is sent when the Space already runs on ``hardware``, and the flavor is not asked for
    again when it is already requested (a retried task just waits). A paused Space, or one asleep
    or failed with ``hardware`` already requested, is restarted so that it comes up on it. The
    wait ends when the Space is ``RUNNING`` with ``hardware`` as its current flavor, and fails at
    once on an error stage, with the Hub's message.

    Used as the setup of a GPU window, keep ``wait_for_running=False`` and wait with
    :class:`~airflow_provider_spaces.sensors.spaces.SpaceStageSensor`: Airflow runs a teardown only
    when its setup succeeded, so the setup should end as soon as the request is sent.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param hardware: the flavor to move to, e.g. ``a10g-large`` (templated). Flavors the package
        does not know are sent as they are; the Hub decides.
    :param sleep_time: seconds without visitors after which the Space sleeps on this hardware
        (templated; -1: never). Set one as a failsafe: a GPU that nobody puts back then stops
        costing money once idle. None keeps the Space's setting.
    :param wait_for_running: wait until the Space runs on ``hardware`` (default).
    :param timeout: longest wait, in seconds or a ``timedelta`` (default 30 minutes).
    :param poll_interval: time between two reads, in seconds or a ``timedelta`` (default 30 s).
    :param deferrable: wait in Airflow's triggerer instead of a worker slot; Airflow's
        ``[operators] default_deferrable`` when None.
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict (stage, hardware, requested hardware, sleep time, URL).
    """

    template_fields: Sequence[str] = ("space_id", "hardware", "sleep_time")

    def __init__(self, *, space_id: str, hardware: str, sleep_time: int | None = None, **kwargs: Any) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.hardware = hardware
        self.sleep_time = sleep_time

    def validate_arguments(self) -> None:
        """Check the Space id, the flavor, the sleep time and the wait's bounds."""
        super().validate_arguments()
        self.hardware = validate_flavor(self.hardware, argument="hardware")
        self.sleep_time = optional_sleep_time(self.sleep_time)

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Request the flavor unless it is there or on its way, then wait for it."""
        runtime = hook.get_space_runtime(self.space_id)
        # On the flavor, and not about to leave it (a downgrade of an earlier run still under way).
        if runtime.arrived(self.hardware) and runtime.requested_hardware in (None, self.hardware):
            self.log.info(
                "Space %s already runs on %s; no hardware request sent", self.space_id, self.hardware
            )
            return _with_sleep_time(self, hook, runtime, self.sleep_time).to_dict()

        before = str(runtime.stage)
        runtime, sent = self._bring_up(hook, runtime)
        return self.wait_until_running(
            hook, runtime, self.hardware, leaving=before if sent else None
        ).to_dict()

    def _bring_up(self, hook: SpacesHook, runtime: SpaceRuntime) -> tuple[SpaceRuntime, bool]:
        """Request the flavor and restart if needed; return the runtime and whether the Space moves."""
        if runtime.requested_hardware != self.hardware:
            self.log.info(
                "Space %s: requesting %s (it is %s)", self.space_id, self.hardware, describe_state(runtime)
            )
            runtime = hook.request_space_hardware(self.space_id, self.hardware, sleep_time=self.sleep_time)
            requested = True
            # A paused Space takes the new flavor but stays paused until someone restarts it.
            stays_down = runtime.stage == SpaceStage.PAUSED
        else:
            requested = False
            self.log.info(
                "Space %s: %s is already requested (it is %s); not requesting it again",
                self.space_id,
                self.hardware,
                describe_state(runtime),
            )
            runtime = _with_sleep_time(self, hook, runtime, self.sleep_time)
            stays_down = _stays_down(runtime)

        if stays_down:
            self.log.info(
                "Space %s is %s; restarting it so that it comes up on %s",
                self.space_id,
                runtime.stage,
                self.hardware,
            )
            runtime = hook.restart_space(self.space_id)
        return runtime, requested or stays_down


class SpaceHardwareDowngradeOperator(_WaitingOperator):
    """Put a Space back on cheap hardware, and make sure it stops costing money whatever happened.

    Made to be the teardown of a GPU window: it never assumes the upgrade succeeded, succeeds at
    once when the Space is already on ``hardware`` (or paused or asleep with it requested), and by
    default waits until the Space runs there. When the downgrade is refused or does not arrive,
    it looks at the Space again: if it costs nothing any more (paused, failed, ...), the task
    succeeds with a warning; otherwise it pauses the Space, which stops the bill on any hardware.

    It keeps trying through passing trouble: when the Hub answers the downgrade, the wait or the
    pause with rate limits, server errors or lost connections beyond the client's own retries, the
    task sends the same step again, pausing between rounds, for up to ``retry_for``. Only when the
    Space may still be costing money does the task fail, loudly: the message names the Space, the
    flavor that may be billing, its price per hour and what to do by hand. Airflow's retries (set
    some on a teardown) may then try again.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param hardware: the flavor to go back to (templated; default ``cpu-basic``, which is free).
    :param fallback_to_pause: pause the Space when the downgrade fails and it may still cost money
        (default). Without it, such a failure fails the task.
    :param retry_for: how long each step (the downgrade, then the pause) is tried again after
        passing Hub errors, in seconds or a ``timedelta`` (default 10 minutes).
    :param wait_for_running: wait until the Space runs on ``hardware`` (default).
    :param timeout: longest wait, in seconds or a ``timedelta`` (default 15 minutes).
    :param poll_interval: time between two reads, in seconds or a ``timedelta`` (default 30 s); the
        first pause between two rounds after a passing error, doubling up to a minute.
    :param deferrable: wait in Airflow's triggerer instead of a worker slot; Airflow's
        ``[operators] default_deferrable`` when None.
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict.
    """

    template_fields: Sequence[str] = ("space_id", "hardware")

    def __init__(
        self,
        *,
        space_id: str,
        hardware: str = FREE_FLAVOR,
        fallback_to_pause: bool = True,
        retry_for: Seconds = DEFAULT_DOWNGRADE_RETRY,
        timeout: Seconds = DEFAULT_DOWNGRADE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(space_id=space_id, timeout=timeout, **kwargs)
        self.hardware = hardware
        self.fallback_to_pause = fallback_to_pause
        self.retry_for = retry_for
        self._retry_seconds = 0.0
        self._wait_deadline = 0.0
        # Prices for the failure message: the built-in table, unless a subclass read the Hub's.
        self.prices: PriceList | None = None

    # The clock and the pause between rounds; tests replace them to check the bounds.
    _monotonic = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def validate_arguments(self) -> None:
        """Check the Space id, the flavor, the fallback flag, the retry bound and the wait's bounds."""
        super().validate_arguments()
        self.hardware = validate_flavor(self.hardware, argument="hardware")
        self.fallback_to_pause = validate_flag(self.fallback_to_pause, argument="fallback_to_pause")
        self._retry_seconds = validate_seconds(self.retry_for, argument="retry_for")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Move down unless already there; on failure, make sure the money stops."""
        # One deadline for the whole wait, however many rounds passing errors cost.
        self._wait_deadline = self._monotonic() + self._timeout_seconds
        runtime = self.read_or_none(hook)
        if runtime is not None and self._already_down(runtime):
            return runtime.to_dict()

        first = runtime
        try:
            runtime = self._keep_trying(
                f"moving it to {self.hardware}",
                lambda again: self._down_round(hook, self.read_or_none(hook) if again else first),
            )
        except HubError as error:
            runtime = self._stop_the_money(hook, error)
        return runtime.to_dict()

    def _down_round(self, hook: SpacesHook, runtime: SpaceRuntime | None) -> SpaceRuntime:
        if runtime is not None and self._already_down(runtime):
            return runtime
        return self._move_down(hook, runtime)

    def _keep_trying(self, step: str, attempt: Callable[[bool], SpaceRuntime]) -> SpaceRuntime:
        """Run ``attempt`` until it succeeds, fails for good, or passing errors outlast ``retry_for``.

        ``attempt`` gets whether it runs again after a failed round. A wait that timed out is not a
        passing error here: the Space did not move, and the caller's fallback should act now.
        """
        deadline = self._monotonic() + self._retry_seconds
        rounds = 1
        while True:
            try:
                return attempt(rounds > 1)
            except SpaceWaitTimeout:
                raise
            except HubError as error:
                left = deadline - self._monotonic()
                if error.is_final or left <= 0:
                    raise
                pause = min(self._round_pause(error, rounds), left)
                self.log.warning(
                    "Space %s: %s failed for a passing reason (round %d; trying again in %.1f s, for "
                    "%.0f s more at most): %s",
                    self.space_id,
                    step,
                    rounds,
                    pause,
                    left,
                    error,
                )
                self._sleep(pause)
                rounds += 1

    def _round_pause(self, error: HubError, rounds: int) -> float:
        asked = error.retry_after if isinstance(error, (RateLimitedError, ServerError)) else None
        backoff = min(self._poll_seconds * 2.0 ** (rounds - 1), _LONGEST_ROUND_PAUSE)
        return max(float(asked or 0.0), backoff)

    def resume(self, hook: SpacesHook, event: dict[str, Any], hardware: str | None) -> dict[str, Any]:
        """Return the runtime of a deferred wait; when the Space did not come down, stop the money."""
        try:
            return super().resume(hook, event, hardware)
        except HubError as error:
            return self._stop_the_money(hook, error).to_dict()

    def _already_down(self, runtime: SpaceRuntime) -> bool:
        if runtime.requested_hardware != self.hardware:
            return False
        if runtime.arrived(self.hardware) or runtime.stage in (SpaceStage.PAUSED, SpaceStage.SLEEPING):
            self.log.info("Space %s is already %s; nothing to send", self.space_id, describe_state(runtime))
            return True
        if runtime.is_error and billing_stopped(runtime):
            self.log.warning(
                "Space %s is %s with %s requested: it costs nothing, so nothing is sent; its error "
                "needs a look at %s",
                self.space_id,
                runtime.stage,
                self.hardware,
                runtime.url,
            )
            return True
        return False

    def _move_down(self, hook: SpacesHook, runtime: SpaceRuntime | None) -> SpaceRuntime:
        leaving = None
        if runtime is None or runtime.requested_hardware != self.hardware:
            shown = describe_state(runtime) if runtime is not None else "of unknown stage"
            self.log.info("Space %s: requesting %s (it is %s)", self.space_id, self.hardware, shown)
            answer = hook.request_space_hardware(self.space_id, self.hardware)
            # Unread before, the stage it leaves is the one the Hub's answer still shows.
            leaving = str(runtime.stage if runtime is not None else answer.stage)
            runtime = answer
        else:
            self.log.info(
                "Space %s: %s is already requested (it is %s); waiting for it",
                self.space_id,
                self.hardware,
                describe_state(runtime),
            )

        if runtime.stage in (SpaceStage.PAUSED, SpaceStage.SLEEPING):
            # It comes back on the new flavor whenever it starts again; down is where it is.
            self.log.info("Space %s is %s with %s requested", self.space_id, runtime.stage, self.hardware)
            return runtime
        # A round after a passing error waits only for what is left of the whole wait.
        # (At least a moment: the wait then reads once more and times out, naming the last stage.)
        self._timeout_seconds = max(0.001, self._wait_deadline - self._monotonic())
        return self.wait_until_running(hook, runtime, self.hardware, leaving=leaving)

    def _stop_the_money(self, hook: SpacesHook, error: HubError) -> SpaceRuntime:
        """After a failed downgrade: succeed if the Space costs nothing, else pause it."""
        self.log.warning("Space %s: moving to %s failed: %s", self.space_id, self.hardware, error)
        latest = self.read_or_none(hook)
        if latest is not None and billing_stopped(latest):
            self.log.warning(
                "Space %s is %s, which costs nothing; leaving it so", self.space_id, describe_state(latest)
            )
            return latest
        if not self.fallback_to_pause:
            raise self._may_still_cost(latest, error, None)

        self.log.warning("Space %s: pausing it instead, so that it stops costing money", self.space_id)
        try:
            paused = self._keep_trying("pausing it", lambda _again: hook.pause_space(self.space_id))
        except HubError as pause_error:
            raise self._may_still_cost(latest, error, pause_error) from pause_error
        self.log.warning(
            "Space %s is paused, which stops its bill; restart it once the downgrade's failure is "
            "understood (%s)",
            self.space_id,
            paused.url,
        )
        return paused

    def _may_still_cost(
        self, latest: SpaceRuntime | None, error: HubError, pause_error: HubError | None
    ) -> AirflowException:
        where = describe_state(latest) if latest is not None else "in a stage the Hub did not tell"
        message = f"Space {self.space_id} may still cost money ({where}): moving it to {self.hardware} failed ({error})"
        if pause_error is not None:
            message += f", and pausing it failed too ({pause_error})"
        flavor = _billing_flavor(latest)
        if flavor is not None:
            price = (self.prices or PriceList()).price(flavor)
            message += f". {flavor} costs {price.describe()}"
        page = f"{self.space_url}/settings" if self.space_url else "on the Hub"
        return AirflowException(
            f"{message}. Stop it by hand now: pause it, or move it to {self.hardware}, on its settings "
            f"page ({page}), or send POST /api/spaces/{self.space_id}/pause to the Hub with a write "
            "token; then find out why the Hub refused"
        )


class SpacePauseOperator(_SpaceOperator):
    """Pause a Space: it stops, and stops costing money on any hardware, until someone restarts it.

    Succeeds without a request when the Space is already paused. When its runtime cannot be read,
    the pause is sent anyway, so that the task can serve as a teardown.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict.
    """

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Pause the Space unless it is paused already."""
        runtime = self.read_or_none(hook)
        if runtime is not None and runtime.stage == SpaceStage.PAUSED:
            self.log.info("Space %s is already paused; nothing to send", self.space_id)
            return runtime.to_dict()

        shown = describe_state(runtime) if runtime is not None else "of unknown stage"
        self.log.info("Space %s: pausing it (it is %s)", self.space_id, shown)
        return hook.pause_space(self.space_id).to_dict()


class SpaceRestartOperator(_WaitingOperator):
    """Restart a Space (a paused one starts again) and wait until it runs.

    A Space that is already building or starting is not restarted again: the task only waits.
    The wait ends when the Space is ``RUNNING`` on the flavor it has requested.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param factory_reboot: rebuild without the build cache.
    :param wait_for_running: wait until the Space runs (default).
    :param timeout: longest wait, in seconds or a ``timedelta`` (default 30 minutes).
    :param poll_interval: time between two reads, in seconds or a ``timedelta`` (default 30 s).
    :param deferrable: wait in Airflow's triggerer instead of a worker slot; Airflow's
        ``[operators] default_deferrable`` when None.
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict.
    """

    def __init__(self, *, space_id: str, factory_reboot: bool = False, **kwargs: Any) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.factory_reboot = factory_reboot

    def validate_arguments(self) -> None:
        """Check the Space id, the reboot flag and the wait's bounds."""
        super().validate_arguments()
        self.factory_reboot = validate_flag(self.factory_reboot, argument="factory_reboot")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Restart unless the Space is already on its way up, then wait."""
        runtime = hook.get_space_runtime(self.space_id)
        leaving = None
        if runtime.in_motion:
            self.log.info("Space %s is already %s; not restarting it again", self.space_id, runtime.stage)
        else:
            self.log.info("Space %s: restarting it (it is %s)", self.space_id, describe_state(runtime))
            leaving = str(runtime.stage)
            runtime = hook.restart_space(self.space_id, factory_reboot=self.factory_reboot)

        expected = str(runtime.requested_hardware) if runtime.requested_hardware else None
        return self.wait_until_running(hook, runtime, expected, leaving=leaving).to_dict()


class SpaceSleepTimeOperator(_SpaceOperator):
    """Set how long a Space on paid hardware may stay idle before it sleeps (and stops costing).

    Nothing is sent when the Space already has this sleep time. The Hub refuses a sleep time on
    free hardware (``cpu-basic`` always sleeps after 48 hours) and on ZeroGPU.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param sleep_time: idle seconds before sleeping, or -1 to never sleep (templated).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict.
    """

    template_fields: Sequence[str] = ("space_id", "sleep_time")

    def __init__(self, *, space_id: str, sleep_time: int, **kwargs: Any) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.sleep_time = sleep_time
        self._sleep_seconds = 0

    def validate_arguments(self) -> None:
        """Check the Space id and the sleep time."""
        super().validate_arguments()
        checked = optional_sleep_time(self.sleep_time)
        if checked is None:
            raise InvalidArgumentError(
                "sleep_time", "must be a number of seconds > 0, or -1 to never sleep, not None"
            )
        self._sleep_seconds = checked

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Set the sleep time unless the Space has it already."""
        runtime = hook.get_space_runtime(self.space_id)
        return _with_sleep_time(self, hook, runtime, self._sleep_seconds, quiet=False).to_dict()


class _SecretValuesOperator(_SpaceOperator):
    """An operator with a ``secrets`` field whose rendered values go to the secrets masker."""

    secrets: Any

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the templated fields, then mask the secret values before Airflow stores them."""
        super().render_template_fields(context, jinja_env)
        mask_values(self.secrets)


class SpaceSecretsOperator(_SecretValuesOperator):
    """Add, update and delete the secrets of a Space.

    The Hub never returns a secret's value, so there is no telling whether a value changed: every
    secret given is sent each time (and the Hub restarts the app for it). Deleting reads the
    Space's secret keys first and skips those it does not have.

    The values never reach a log line, XCom, the rendered fields Airflow stores, or an error
    message. Pass them as templates (``"{{ conn.my_conn.password }}"``, ``"{{ var.value.x }}"``)
    rather than as literals in the DAG file, which Airflow stores with the DAG.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param secrets: key to value of the secrets to add or update (templated).
    :param delete: keys of secrets to delete (templated).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict, with ``changes``: the keys set, deleted and already absent.
    """

    template_fields: Sequence[str] = ("space_id", "secrets", "delete")

    def __init__(
        self,
        *,
        space_id: str,
        secrets: Mapping[str, str] | None = None,
        delete: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.secrets = secrets
        self.delete = delete
        self._values: dict[str, str] = {}
        self._keys_to_delete: list[str] = []

    def validate_arguments(self) -> None:
        """Check the Space id, the secrets (without quoting a value) and the keys to delete."""
        super().validate_arguments()
        mask_values(self.secrets)
        self._values = validate_values({} if self.secrets is None else self.secrets, argument="secrets")
        self._keys_to_delete = validate_keys(self.delete, argument="delete")
        _check_changes(self._values, self._keys_to_delete, argument="secrets")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Upsert every secret given, delete those present, and return the runtime."""
        present = hook.get_space_secrets(self.space_id)
        for key, value in self._values.items():
            hook.add_space_secret(self.space_id, key, value)
            self.log.info("Space %s: secret %s set", self.space_id, key)

        deleted, absent = _delete_present(
            self, self._keys_to_delete, present, hook.delete_space_secret, "secret"
        )
        changes = {"set": sorted(self._values), "deleted": deleted, "already_absent": absent}
        return {**hook.get_space_runtime(self.space_id).to_dict(), "changes": changes}


class SpaceVariablesOperator(_SpaceOperator):
    """Add, update and delete the public variables of a Space, sending only what differs.

    The variables are read first: a variable that already has its value is not sent again (each
    change restarts the app), and a key to delete that the Space does not have is skipped.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param variables: key to value of the variables to add or update (templated).
    :param delete: keys of variables to delete (templated).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the Space's runtime as a dict, with ``changes``: the keys set, unchanged, deleted and
        already absent.
    """

    template_fields: Sequence[str] = ("space_id", "variables", "delete")

    def __init__(
        self,
        *,
        space_id: str,
        variables: Mapping[str, str] | None = None,
        delete: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.variables = variables
        self.delete = delete
        self._values: dict[str, str] = {}
        self._keys_to_delete: list[str] = []

    def validate_arguments(self) -> None:
        """Check the Space id, the variables and the keys to delete."""
        super().validate_arguments()
        self._values = validate_values({} if self.variables is None else self.variables, argument="variables")
        self._keys_to_delete = validate_keys(self.delete, argument="delete")
        _check_changes(self._values, self._keys_to_delete, argument="variables")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Send the variables whose value differs, delete those present, return the runtime."""
        present = hook.get_space_variables(self.space_id)
        changed = [
            key for key, value in self._values.items() if key not in present or present[key].value != value
        ]
        for key in changed:
            hook.add_space_variable(self.space_id, key, self._values[key])
            self.log.info("Space %s: variable %s set", self.space_id, key)
        unchanged = sorted(set(self._values) - set(changed))
        if unchanged:
            self.log.info(
                "Space %s: variables %s already have their values", self.space_id, ", ".join(unchanged)
            )

        deleted, absent = _delete_present(
            self, self._keys_to_delete, present, hook.delete_space_variable, "variable"
        )
        changes = {
            "set": sorted(changed),
            "unchanged": unchanged,
            "deleted": deleted,
            "already_absent": absent,
        }
        return {**hook.get_space_runtime(self.space_id).to_dict(), "changes": changes}


class SpaceDuplicateOperator(_WaitingOperator, _SecretValuesOperator):
    """Copy a Space to a new one, with its own hardware, sleep time, secrets and variables.

    When the target already exists, nothing is sent (its settings are left as they are, and a
    warning says so): running the task again never makes a second copy. The copy starts on
    ``cpu-basic`` unless ``hardware`` is given; by default the task waits until it runs on it.
    The Hub copies the source's variables but not its secrets: pass them in ``secrets``.

    :param space_id: the Space to copy, ``namespace/name`` (templated).
    :param target_space_id: the new Space, ``namespace/name`` (templated); must differ from the source.
    :param visibility: ``public``, ``private`` or ``protected`` (templated); None keeps the source's.
    :param hardware: the copy's flavor (templated); None starts it on ``cpu-basic``.
    :param sleep_time: the copy's sleep time in seconds, -1 for never (templated); paid hardware only.
    :param secrets: key to value of the copy's secrets (templated; masked like
        :class:`SpaceSecretsOperator`'s).
    :param variables: key to value of variables to set on the copy (templated).
    :param wait_for_running: wait until the copy runs on its flavor (default).
    :param timeout: longest wait, in seconds or a ``timedelta`` (default 30 minutes).
    :param poll_interval: time between two reads, in seconds or a ``timedelta`` (default 30 s).
    :param deferrable: wait in Airflow's triggerer instead of a worker slot; Airflow's
        ``[operators] default_deferrable`` when None.
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: the copy's runtime as a dict; the task's link points at the copy.
    """

    template_fields: Sequence[str] = (
        "space_id",
        "target_space_id",
        "visibility",
        "hardware",
        "sleep_time",
        "secrets",
        "variables",
    )

    def __init__(
        self,
        *,
        space_id: str,
        target_space_id: str,
        visibility: str | None = None,
        hardware: str | None = None,
        sleep_time: int | None = None,
        secrets: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.target_space_id = target_space_id
        self.visibility = visibility
        self.hardware = hardware
        self.sleep_time = sleep_time
        self.secrets = secrets
        self.variables = variables

    @property
    def linked_space_id(self) -> str:
        """Return the copy: the Space the task's link points at."""
        return str(self.target_space_id)

    def validate_arguments(self) -> None:
        """Check both ids, the copy's settings, its secrets (without quoting one) and the wait."""
        super().validate_arguments()
        mask_values(self.secrets)
        self.target_space_id = validate_space_id(self.target_space_id, argument="target_space_id")
        if self.target_space_id == self.space_id:
            raise InvalidArgumentError(
                "target_space_id", f"must differ from space_id, not {self.space_id!r} again"
            )
        if self.visibility is not None:
            self.visibility = validate_visibility(self.visibility)
        if self.hardware is not None:
            self.hardware = validate_flavor(self.hardware, argument="hardware")
        self._validate_copy_settings()

    def _validate_copy_settings(self) -> None:
        self.sleep_time = optional_sleep_time(self.sleep_time)
        if self.sleep_time is not None and not is_paid_flavor(self.hardware or FREE_FLAVOR):
            raise InvalidArgumentError(
                "sleep_time",
                f"can only be set on paid hardware, and the copy starts on {self.hardware or FREE_FLAVOR}",
                hint="Give hardware as well, or drop sleep_time.",
            )
        if self.secrets is not None:
            self.secrets = validate_values(self.secrets, argument="secrets")
        if self.variables is not None:
            self.variables = validate_values(self.variables, argument="variables")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Duplicate unless the target exists, then wait until the copy runs."""
        runtime = self._existing_target(hook)
        if runtime is not None:
            self.log.warning(
                "Space %s already exists (%s); not duplicating %s again, and leaving its settings, "
                "secrets and hardware as they are",
                self.target_space_id,
                describe_state(runtime),
                self.space_id,
            )
        else:
            runtime = self._duplicate(hook)

        expected = str(runtime.requested_hardware) if runtime.requested_hardware else None
        return self.wait_until_running(hook, runtime, expected, space_id=self.target_space_id).to_dict()

    def _existing_target(self, hook: SpacesHook) -> SpaceRuntime | None:
        try:
            return hook.get_space_runtime(self.target_space_id)
        except NotFoundError:
            return None

    def _duplicate(self, hook: SpacesHook) -> SpaceRuntime:
        self.log.info(
            "Duplicating Space %s to %s (hardware %s, %d secrets, %d variables)",
            self.space_id,
            self.target_space_id,
            self.hardware or FREE_FLAVOR,
            len(self.secrets or {}),
            len(self.variables or {}),
        )
        hook.duplicate_space(
            self.space_id,
            self.target_space_id,
            visibility=self.visibility,
            hardware=self.hardware,
            sleep_time=self.sleep_time,
            secrets=self.secrets,
            variables=self.variables,
            exist_ok=True,
        )
        return hook.get_space_runtime(self.target_space_id)


# -- helpers shared by several operators -----------------------------------------------------------


def _billing_flavor(runtime: SpaceRuntime | None) -> str | None:
    """Return the paid flavor a Space runs on or is about to, or None when it shows none."""
    if runtime is None:
        return None
    for flavor in (runtime.hardware, runtime.requested_hardware):
        if flavor is not None and is_paid_flavor(str(flavor)):
            return str(flavor)
    return None


def _stays_down(runtime: SpaceRuntime) -> bool:
    """Tell whether the Space will not come up without a restart (paused, asleep, failed, ...)."""
    return runtime.is_error or SpaceStage.parse(str(runtime.stage)) in DEAD_END_STAGES


def _sleep_time_matches(runtime: SpaceRuntime, wanted: int) -> bool:
    # The Hub shows "never sleep" on paid hardware as no sleep time at all.
    return runtime.sleep_time == wanted or (wanted == _NEVER_SLEEP and runtime.sleep_time is None)


def _with_sleep_time(
    task: _SpaceOperator, hook: SpacesHook, runtime: SpaceRuntime, wanted: int | None, *, quiet: bool = True
) -> SpaceRuntime:
    """Set the sleep time when one is wanted and the Space has another; return the fresh runtime."""
    if wanted is None:
        return runtime
    if _sleep_time_matches(runtime, wanted):
        if not quiet:
            task.log.info("Space %s already has a sleep time of %s s; nothing to send", task.space_id, wanted)
        return runtime
    task.log.info(
        "Space %s: setting its sleep time to %s s (it was %s)", task.space_id, wanted, runtime.sleep_time
    )
    return hook.set_space_sleep_time(task.space_id, wanted)


def _check_changes(values: Mapping[str, str], delete: list[str], *, argument: str) -> None:
    if not values and not delete:
        raise InvalidArgumentError(argument, f"nothing to do: give {argument} to set or keys to delete")
    both = sorted(set(values) & set(delete))
    if both:
        raise InvalidArgumentError(
            "delete", f"{', '.join(both)} also in {argument}: set it or delete it, not both"
        )


def _delete_present(
    task: _SpaceOperator, keys: list[str], present: Mapping[str, Any], delete: Any, kind: str
) -> tuple[list[str], list[str]]:
    """Delete the keys the Space has; return the deleted keys and those that were already absent."""
    deleted, absent = [], []
    for key in keys:
        if key not in present:
            absent.append(key)
            continue
        delete(task.space_id, key)
        deleted.append(key)
        task.log.info("Space %s: %s %s deleted", task.space_id, kind, key)
    if absent:
        task.log.info("Space %s has no %s %s; nothing to delete", task.space_id, kind, ", ".join(absent))
    return deleted, absent
