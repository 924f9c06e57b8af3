"""The tasks that bracket a GPU window: take the lease, give the GPU back with a cost report, and
close the window with the run's true outcome.

:func:`~airflow_provider_spaces.window.space_gpu_window` wires them for DAG authors; they can be
used alone as well. The lease is what lets the guard
(:mod:`~airflow_provider_spaces.guard`) put a Space back when nothing in the run can: it records,
in an Airflow Variable, which run holds the Space's paid hardware and until when.

Importing this module is cheap: the Hub client, and ``requests`` with it, load on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_spaces._compat import AirflowException, AirflowFailException
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR
from airflow_provider_spaces.hub.costs import PriceList
from airflow_provider_spaces.hub.validation import validate_flavor, validate_seconds
from airflow_provider_spaces.leases import DEFAULT_GRACE, Lease, LeaseConflict, LeaseStore
from airflow_provider_spaces.operators.spaces import (
    Seconds,
    SpaceHardwareDowngradeOperator,
    _SpaceOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_spaces.hooks.spaces import SpacesHook

__all__ = ["SpaceLeaseOperator", "SpaceWindowCloseOperator", "SpaceWindowDowngradeOperator"]

# Task states that mean a part of the window did not do its job.
_FAILED_STATES = frozenset({"failed", "upstream_failed"})


def _holder(context: Context) -> tuple[str, str, str]:
    """Return the DAG, run and task ids of the running task instance."""
    ti = context["ti"]
    return str(ti.dag_id), str(ti.run_id), str(ti.task_id)


class SpaceLeaseOperator(_SpaceOperator):
    """Record that this run takes a Space's paid hardware, until when, before asking the Hub for it.

    The lease is an Airflow Variable (``spaces_lease:<space id>``) naming the DAG, the run and the
    task, the flavor, and the expiry: now, plus ``max_duration``, plus ``grace``. A guard puts the
    Space back once the lease has expired, whatever happened to the run. Nothing is sent to the
    Hub. The task fails, without retries, when another run holds an unexpired lease on the Space:
    two windows must not share a GPU, since the first to end would take it from the other. An
    expired lease of another run, and this run's own (a retry), are replaced.

    :param space_id: the Space, ``namespace/name`` (templated).
    :param hardware: the paid flavor the window takes, e.g. ``a10g-large`` (templated).
    :param max_duration: the longest the window may hold the hardware, from this task on (the GPU
        build, the wait and the work), in seconds or a ``timedelta``.
    :param grace: time after ``max_duration`` before the guard acts, in seconds or a ``timedelta``
        (default 15 minutes).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``); only
        read for the Space's link.
    :return: the lease as a dict: the Space, the flavor, the holder, ``taken_at`` and ``expires_at``.
    """

    template_fields: Sequence[str] = ("space_id", "hardware")
    ui_color = "#e8f7e4"

    def __init__(
        self,
        *,
        space_id: str,
        hardware: str,
        max_duration: Seconds,
        grace: Seconds = DEFAULT_GRACE,
        **kwargs: Any,
    ) -> None:
        super().__init__(space_id=space_id, **kwargs)
        self.hardware = hardware
        self.max_duration = max_duration
        self.grace = grace
        self._holder = ("", "", "")
        self._max_seconds = 0.0
        self._grace_seconds = 0.0

    def execute(self, context: Context) -> dict[str, Any]:
        """Note which run this is, then take the lease."""
        self._holder = _holder(context)
        return super().execute(context)

    def validate_arguments(self) -> None:
        """Check the Space id, the flavor and the durations."""
        super().validate_arguments()
        self.hardware = validate_flavor(self.hardware, argument="hardware")
        self._max_seconds = validate_seconds(self.max_duration, argument="max_duration")
        self._grace_seconds = validate_seconds(self.grace, argument="grace")

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Write the lease, unless another run holds the Space."""
        dag_id, run_id, task_id = self._holder
        lease = Lease.take(
            self.space_id,
            self.hardware,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            max_duration=timedelta(seconds=self._max_seconds),
            grace=timedelta(seconds=self._grace_seconds),
        )
        try:
            replaced = LeaseStore().take(lease)
        except LeaseConflict as error:
            raise AirflowFailException(
                f"{error}. This run does not take the Space from it: wait for that window to end, "
                "or release its lease by deleting the Variable once it is known to be over."
            ) from error

        if replaced is not None and not replaced.held_by(dag_id, run_id):
            self.log.warning("Space %s: replacing the expired lease of %s", self.space_id, replaced.holder)
        self.log.info(
            "Space %s leased to %s for %s until %s (the guard acts after that)",
            self.space_id,
            lease.holder,
            self.hardware,
            lease.expires_at.isoformat(timespec="seconds"),
        )
        return lease.to_dict()


class SpaceWindowDowngradeOperator(SpaceHardwareDowngradeOperator):
    """Put a Space back (as :class:`SpaceHardwareDowngradeOperator`), release its lease, report the cost.

    Made to be the teardown of a GPU window whose setup is :class:`SpaceLeaseOperator`. Once the
    money has stopped (the Space is back on ``hardware``, paused, or costs nothing), the run's
    lease is deleted and the task logs and returns the window's cost: the flavor's price per hour
    (from the Hub's catalog, or the built-in table when the catalog cannot be read), the minutes
    from the lease to now, and their cost. The minutes count from before the GPU request, so the
    estimate errs high by the build, which the Hub does not bill.

    When the money may still be running, the task fails loudly as the downgrade does, and ends the
    lease at once, so that the guard's next run deals with the Space without waiting for the
    expiry.

    Takes the parameters of :class:`SpaceHardwareDowngradeOperator`.

    :return: the Space's runtime as a dict, with ``cost`` (``hardware``, ``usd_per_hour``,
        ``price_source``, ``minutes``, ``usd``; None without a lease) and ``lease_released``.
    """

    def __init__(self, *, space_id: str, hardware: str = FREE_FLAVOR, **kwargs: Any) -> None:
        super().__init__(space_id=space_id, hardware=hardware, **kwargs)
        self._holder = ("", "", "")

    def execute(self, context: Context) -> dict[str, Any]:
        """Note which run this is, then put the Space back."""
        self._holder = _holder(context)
        return super().execute(context)

    def execute_complete(
        self, context: Context, event: dict[str, Any], hardware: str | None = None
    ) -> dict[str, Any]:
        """Note which run this is, then finish a deferred wait as :meth:`execute` finishes one."""
        self._holder = _holder(context)
        return super().execute_complete(context, event, hardware)

    def act(self, hook: SpacesHook) -> dict[str, Any]:
        """Stop the money, then release the lease and report the cost."""
        move_down = super().act
        return self._then_release(hook, lambda: move_down(hook))

    def resume(self, hook: SpacesHook, event: dict[str, Any], hardware: str | None) -> dict[str, Any]:
        """Finish a deferred wait for the Space to come down, then release the lease and report the cost."""
        finish = super().resume
        return self._then_release(hook, lambda: finish(hook, event, hardware))

    def _then_release(self, hook: SpacesHook, stop_the_money: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``stop_the_money``; on success release the lease and add the cost, else end the lease."""
        dag_id, run_id, _ = self._holder
        store = LeaseStore()
        lease = self._own_lease(store, dag_id, run_id)

        try:
            # A deferral passes through: it is no failure, and the lease holds until the wait ends.
            result = stop_the_money()
        except AirflowException:
            if lease is not None:
                store.put(lease.ended_now())
                self.log.error(
                    "Space %s: lease ended now, so that the guard's next run deals with it", self.space_id
                )
            raise

        released = store.release(self.space_id, dag_id=dag_id, run_id=run_id)
        # Only now: while the Hub is failing, reading its catalog first would delay the move down.
        self.prices = PriceList.read(hook.list_space_hardware)
        return {**result, "cost": self._report(lease), "lease_released": released is not None}

    def _own_lease(self, store: LeaseStore, dag_id: str, run_id: str) -> Lease | None:
        try:
            lease = store.get(self.space_id)
        except ValueError as error:
            self.log.warning("Space %s: its lease cannot be read (%s)", self.space_id, error)
            return None
        if lease is None or not lease.held_by(dag_id, run_id):
            holder = lease.holder if lease is not None else "nobody"
            self.log.warning("Space %s: this run holds no lease on it (%s does)", self.space_id, holder)
            return None
        return lease

    def _report(self, lease: Lease | None) -> dict[str, Any] | None:
        if lease is None:
            self.log.warning(
                "Space %s: without this run's lease, the window's cost is unknown", self.space_id
            )
            return None
        assert self.prices is not None, "act reads the prices first"
        estimate = self.prices.estimate(lease.hardware, lease.minutes_held())
        self.log.info("Space %s: window cost: %s", self.space_id, estimate.describe())
        return estimate.to_dict()


class SpaceWindowCloseOperator(BaseOperator):
    """End a GPU window with the run's true outcome: fail when any of its tasks failed.

    Made to be a teardown of the window (with ``on_failure_fail_dagrun``), run after the
    downgrade. Airflow judges a run by its last tasks, and counts a teardown that can fail the run
    among them, so without this task a run whose work failed but whose GPU was given back would
    end green. It also keeps the truth when a person marks the run failed: Airflow then skips the
    pending tasks but still runs the teardowns, and decides the run's state from them.

    :param window_task_ids: the tasks whose failure fails the window (the work, the wait, ...).
    :raises AirflowFailException: naming the tasks that failed or could not run.
    """

    ui_color = "#e8f7e4"

    def __init__(self, *, window_task_ids: Collection[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window_task_ids = sorted(window_task_ids)

    def execute(self, context: Context) -> None:
        """Read the states of the window's tasks in this run, and fail if any of them failed."""
        ti = context["ti"]
        found = ti.get_task_states(dag_id=ti.dag_id, task_ids=self.window_task_ids, run_ids=[ti.run_id])
        states = {task_id: str(state) for task_id, state in found.get(ti.run_id, {}).items()}
        failed = sorted(task_id for task_id, state in states.items() if state in _FAILED_STATES)
        if failed:
            shown = ", ".join(f"{task_id} ({states[task_id]})" for task_id in failed)
            raise AirflowFailException(f"The GPU window did not do its job: {shown}")
        self.log.info("The GPU window is closed: %d of its tasks ran, none failed", len(states))
