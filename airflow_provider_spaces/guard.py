"""The guard: a DAG, run every few minutes, that stops the bill of any Space nobody is responsible for.

It is the second line of defence of a GPU window (:func:`~airflow_provider_spaces.window.
space_gpu_window`). A window's teardown puts its Space back in every case Airflow sees: a failed
task, a run marked failed. It cannot when its worker or scheduler died, when Airflow is down as
the window ends, or when the Hub refused every attempt. The window's lease then runs out, and the
guard puts the Space back at its next run. ::

    from airflow_provider_spaces.guard import make_space_guard_dag

    dag = make_space_guard_dag(spaces=["me/trainer", "me/demo"], policy="downgrade")

See :class:`~airflow_provider_spaces.operators.guard.SpaceGuardOperator` for what it finds and
does. Creating the DAG looks up no connection and sends no request.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR
from airflow_provider_spaces.hub.validation import validate_flag, validate_space_id
from airflow_provider_spaces.operators.guard import POLICIES, SpaceGuardOperator, validate_policy

__all__ = ["DEFAULT_GUARD_INTERVAL", "POLICIES", "make_space_guard_dag"]

# Often enough that a forgotten A10G large costs cents, rarely enough to spend little of the
# token's quota: one read per watched Space per run.
DEFAULT_GUARD_INTERVAL = timedelta(minutes=5)
_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_space_guard_dag(
    dag_id: str = "space_guard",
    *,
    spaces: Collection[str] = (),
    policy: str = "downgrade",
    dry_run: bool = False,
    schedule: timedelta | str = DEFAULT_GUARD_INTERVAL,
    hardware: str = FREE_FLAVOR,
    spaces_conn_id: str = SpacesHook.default_conn_name,
    start_date: datetime = _START,
    **dag_kwargs: Any,
) -> DAG:
    """Return a DAG that guards ``spaces`` and every Space that ever had a lease.

    :param dag_id: the DAG's id.
    :param spaces: Spaces to watch besides those that had a lease, ``namespace/name``.
    :param policy: what to do with a Space that costs money with an expired lease or none:
        ``downgrade`` (to ``hardware``, pausing it when the Hub refuses), ``pause``, or ``report``.
    :param dry_run: decide and report, but send nothing.
    :param schedule: how often it runs: a ``timedelta`` or a cron expression (default every 5
        minutes). A Space can cost money for up to one interval after its lease expires.
    :param hardware: where a downgrade goes (default ``cpu-basic``, which is free).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :param start_date: when the schedule starts (the past: runs start at once, without catch-up).
    :param dag_kwargs: more arguments for the DAG (``tags``, ``default_args``, ...).
    :raises InvalidArgumentError: a Space id, the policy or ``dry_run`` is malformed.
    """
    watched = [validate_space_id(space_id, argument="spaces") for space_id in spaces]
    options: dict[str, Any] = {
        "description": "Put back Spaces that cost money with an expired lease or none",
        "tags": ["huggingface", "cost"],
        **dag_kwargs,
    }
    with DAG(
        dag_id,
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        # A run that outlasts the interval must not overlap the next: both would act on a Space.
        max_active_runs=1,
        **options,
    ) as dag:
        SpaceGuardOperator(
            task_id="guard",
            spaces=watched,
            policy=validate_policy(policy),
            dry_run=validate_flag(dry_run, argument="dry_run"),
            hardware=hardware,
            spaces_conn_id=spaces_conn_id,
        )
    return dag
