"""A GPU window in one line: take a Space's GPU for the tasks in a ``with`` block, and always give it back.

::

    with DAG("nightly_training", ...):
        with space_gpu_window("me/trainer", hardware="a10g-large", max_duration=timedelta(hours=2)):
            trained = train()

wires, around the tasks created in the block (the work)::

    take_gpu_lease (setup) >> upgrade (setup) >> wait_for_gpu >> work >> downgrade (teardown)
                                                  work, downgrade >> window_closed (teardown)

- ``take_gpu_lease`` records in an Airflow Variable that this run holds the Space's GPU until
  its start plus ``max_duration`` plus ``grace``; the guard (:mod:`~airflow_provider_spaces.guard`)
  puts back any Space whose lease has expired, whatever happened to the run.
- ``upgrade`` asks for the GPU without waiting, with a sleep time as a failsafe (by default the
  lease's length): should nothing else put the Space back, it falls asleep once idle that long.
- ``wait_for_gpu`` waits until the Space runs on the GPU, and fails at once on a failed build.
- ``downgrade`` goes back to ``cpu-basic`` (or pauses the Space when the Hub refuses that), trying
  again through passing Hub errors; it releases the lease and reports the window's cost. It runs
  whenever the lease was taken, so also after an upgrade that failed once the Hub had the request;
  its own failure fails the run, since money may still be running.
- ``window_closed``, a teardown too, fails when any task of the window failed: Airflow judges a
  run by its last tasks, and a teardown that can fail the run counts as one, which would otherwise
  hide a failed work task; and a run a person marks failed still runs its teardowns, which then
  decide its state.

Chain a task that needs the GPU given back after ``window.downgrade``, never after
``window.closed``: a task after it would be the one judging the run, and a run marked failed
skips it, which Airflow counts as a success.

Parsing a DAG that uses it looks up no connection and sends no request.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR
from airflow_provider_spaces.hub.validation import validate_seconds
from airflow_provider_spaces.leases import DEFAULT_GRACE
from airflow_provider_spaces.operators.spaces import (
    DEFAULT_DOWNGRADE_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    Seconds,
    SpaceHardwareUpgradeOperator,
)
from airflow_provider_spaces.operators.window import (
    SpaceLeaseOperator,
    SpaceWindowCloseOperator,
    SpaceWindowDowngradeOperator,
)
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

if TYPE_CHECKING:
    from airflow.sdk.types import Operator

__all__ = ["SpaceGpuWindow", "space_gpu_window"]


@dataclass
class SpaceGpuWindow:
    """The tasks of one GPU window; ``downgrade``, ``closed`` and ``work`` exist once the block ends."""

    take_lease: SpaceLeaseOperator
    upgrade: SpaceHardwareUpgradeOperator
    wait_for_gpu: SpaceStageSensor
    work: list[Operator] = field(default_factory=list)
    _downgrade: SpaceWindowDowngradeOperator | None = None
    _closed: SpaceWindowCloseOperator | None = None

    @property
    def downgrade(self) -> SpaceWindowDowngradeOperator:
        """Return the teardown that puts the Space back, releases the lease and reports the cost."""
        if self._downgrade is None:
            raise RuntimeError("the window's downgrade is created when its with block ends")
        return self._downgrade

    @property
    def closed(self) -> SpaceWindowCloseOperator:
        """Return the teardown that fails the run when a task of the window failed; put nothing after it."""
        if self._closed is None:
            raise RuntimeError("the window's closing task is created when its with block ends")
        return self._closed


@contextmanager
def space_gpu_window(
    space_id: str,
    *,
    hardware: str,
    max_duration: Seconds,
    grace: Seconds = DEFAULT_GRACE,
    back_to: str = FREE_FLAVOR,
    failsafe_sleep_time: int | None = None,
    poll_interval: Seconds = DEFAULT_POLL_INTERVAL,
    gpu_timeout: Seconds = DEFAULT_TIMEOUT,
    downgrade_timeout: Seconds = DEFAULT_DOWNGRADE_TIMEOUT,
    teardown_retries: int = 2,
    spaces_conn_id: str = SpacesHook.default_conn_name,
    task_id_prefix: str = "",
    wait_options: Mapping[str, Any] | None = None,
) -> Iterator[SpaceGpuWindow]:
    """Give the tasks created in the ``with`` block a Space on ``hardware``, and always take it back.

    Use it inside a DAG; the tasks created in the block are the work (at least one). See the
    module's docstring for the tasks it adds and why.

    :param space_id: the Space, ``namespace/name`` (templated in every task).
    :param hardware: the paid flavor to rent, e.g. ``a10g-large``.
    :param max_duration: the longest the window may hold the GPU, from the lease on: the build,
        the wait and the work. The guard puts the Space back once this and ``grace`` have passed.
    :param grace: time after ``max_duration`` before the guard acts (default 15 minutes).
    :param back_to: the flavor to go back to (default ``cpu-basic``, which is free).
    :param failsafe_sleep_time: the idle seconds after which the Space sleeps on the GPU, should
        nothing put it back; None (default) uses ``max_duration + grace``, so that an idle GPU
        stops costing money about when the lease expires even without a guard. Note that the Hub
        counts idleness from the last visit, and at the earliest from the GPU's start: the Space
        falls asleep after the lease's expiry by about the GPU's build and start, and work that
        keeps calling the Space keeps it awake. A guard interval shorter than the build keeps the
        guard the first to act.
    :param poll_interval: time between two reads of the Space (default 30 s).
    :param gpu_timeout: longest wait for the GPU to come up (default 30 minutes).
    :param downgrade_timeout: longest wait for the Space to arrive back (default 15 minutes).
    :param teardown_retries: Airflow retries of the downgrade, on top of its own rounds (default 2).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :param task_id_prefix: put before every task id of the window, for several windows in one DAG.
    :param wait_options: more arguments for the ``wait_for_gpu`` sensor (``mode``, ...).
    :return: the window's tasks (:class:`SpaceGpuWindow`).
    :raises InvalidArgumentError: a duration is not a positive number of seconds or a ``timedelta``.
    :raises ValueError: the block created no task.
    """
    lease_seconds = validate_seconds(max_duration, argument="max_duration") + validate_seconds(
        grace, argument="grace"
    )
    common: dict[str, Any] = {"space_id": space_id, "spaces_conn_id": spaces_conn_id}
    take_lease = SpaceLeaseOperator(
        task_id=f"{task_id_prefix}take_gpu_lease",
        hardware=hardware,
        max_duration=max_duration,
        grace=grace,
        **common,
    )
    upgrade = SpaceHardwareUpgradeOperator(
        task_id=f"{task_id_prefix}upgrade",
        hardware=hardware,
        sleep_time=failsafe_sleep_time if failsafe_sleep_time is not None else math.ceil(lease_seconds),
        wait_for_running=False,
        **common,
    )
    wait_for_gpu = SpaceStageSensor(
        task_id=f"{task_id_prefix}wait_for_gpu",
        hardware=hardware,
        poke_interval=poll_interval,
        timeout=gpu_timeout,
        **common,
        **dict(wait_options or {}),
    )
    take_lease >> upgrade >> wait_for_gpu
    window = SpaceGpuWindow(take_lease, upgrade, wait_for_gpu)
    dag = take_lease.dag
    before = set(dag.task_dict)

    yield window

    window.work = [task for task_id, task in dag.task_dict.items() if task_id not in before]
    if not window.work:
        raise ValueError(f"space_gpu_window({space_id!r}): create the work's tasks inside the with block")
    downgrade = SpaceWindowDowngradeOperator(
        task_id=f"{task_id_prefix}downgrade",
        hardware=back_to,
        poll_interval=poll_interval,
        timeout=downgrade_timeout,
        retries=teardown_retries,
        retry_delay=timedelta(seconds=validate_seconds(poll_interval, argument="poll_interval")),
        **common,
    )
    watched = [task.task_id for task in (take_lease, upgrade, wait_for_gpu, *window.work, downgrade)]
    closed = SpaceWindowCloseOperator(task_id=f"{task_id_prefix}window_closed", window_task_ids=watched)
    _wire(window, downgrade, closed)
    window._downgrade, window._closed = downgrade, closed


def _wire(
    window: SpaceGpuWindow, downgrade: SpaceWindowDowngradeOperator, closed: SpaceWindowCloseOperator
) -> None:
    """Put the work between the wait and the teardown, and the closing teardown after both."""
    ids = {task.task_id for task in window.work}
    first = [task for task in window.work if not task.upstream_task_ids & ids]
    last = [task for task in window.work if not task.downstream_task_ids & ids]
    setups = [window.take_lease, window.upgrade]

    window.wait_for_gpu >> first
    last >> downgrade
    downgrade.as_teardown(setups=setups, on_failure_fail_dagrun=True)
    [*last, downgrade] >> closed
    closed.as_teardown(setups=setups, on_failure_fail_dagrun=True)
