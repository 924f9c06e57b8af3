"""``space_gpu_window``: the tasks it adds around the work, and how it wires them, at parse time."""

from __future__ import annotations

import datetime

import pytest
from airflow.sdk import DAG, task

from airflow_provider_spaces.hub.errors import InvalidArgumentError
from airflow_provider_spaces.window import space_gpu_window

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
TWO_HOURS = datetime.timedelta(hours=2)


@task
def step() -> None:
    """Stand in for a piece of the work."""


def upstream(dag: DAG, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


def test_the_window_puts_the_work_between_the_gpu_and_a_teardown_that_fails_the_run():
    with DAG("window", schedule=None, start_date=START) as dag:
        with space_gpu_window("me/trainer", hardware="a10g-large", max_duration=TWO_HOURS) as window:
            prepare = step.override(task_id="prepare")()
            left = step.override(task_id="train_left")()
            right = step.override(task_id="train_right")()
            prepare >> [left, right]

    assert [task.task_id for task in window.work] == ["prepare", "train_left", "train_right"]
    assert dag.get_task("take_gpu_lease").is_setup and dag.get_task("upgrade").is_setup
    assert upstream(dag, "upgrade") == {"take_gpu_lease"}
    assert upstream(dag, "wait_for_gpu") == {"upgrade"}
    assert upstream(dag, "prepare") == {"wait_for_gpu"}
    downgrade = dag.get_task("downgrade")
    assert downgrade.is_teardown and downgrade.on_failure_fail_dagrun
    assert upstream(dag, "downgrade") == {"take_gpu_lease", "upgrade", "train_left", "train_right"}
    closed = dag.get_task("window_closed")
    assert closed.is_teardown and closed.on_failure_fail_dagrun
    assert upstream(dag, "window_closed") == {
        "take_gpu_lease",
        "upgrade",
        "downgrade",
        "train_left",
        "train_right",
    }
    assert closed.window_task_ids == sorted(
        ["take_gpu_lease", "upgrade", "wait_for_gpu", "prepare", "train_left", "train_right", "downgrade"]
    )
    assert window.downgrade is downgrade


def test_the_failsafe_sleep_time_defaults_to_the_leases_length():
    with DAG("window", schedule=None, start_date=START) as dag:
        with space_gpu_window(
            "me/trainer", hardware="a10g-large", max_duration=TWO_HOURS, grace=datetime.timedelta(minutes=10)
        ):
            step()

    assert dag.get_task("upgrade").sleep_time == 2 * 3600 + 600
    assert dag.get_task("take_gpu_lease").max_duration == TWO_HOURS


def test_a_given_failsafe_sleep_time_and_prefix_are_used():
    with DAG("window", schedule=None, start_date=START) as dag:
        with space_gpu_window(
            "me/trainer",
            hardware="t4-small",
            max_duration=3600,
            failsafe_sleep_time=900,
            task_id_prefix="t4_",
        ):
            step()

    assert dag.get_task("t4_upgrade").sleep_time == 900
    assert {"t4_take_gpu_lease", "t4_wait_for_gpu", "t4_downgrade", "t4_window_closed"} <= set(dag.task_ids)


def test_a_window_without_work_is_refused():
    with DAG("window", schedule=None, start_date=START):
        with pytest.raises(ValueError, match="create the work's tasks inside the with block"):
            with space_gpu_window("me/trainer", hardware="a10g-large", max_duration=TWO_HOURS):
                pass


def test_a_window_without_a_positive_max_duration_is_refused():
    with DAG("window", schedule=None, start_date=START):
        with pytest.raises(InvalidArgumentError, match="max_duration"):
            with space_gpu_window("me/trainer", hardware="a10g-large", max_duration=0):
                step()


def test_the_windows_closing_task_exists_only_once_the_block_ends():
    with DAG("window", schedule=None, start_date=START):
        with space_gpu_window("me/trainer", hardware="a10g-large", max_duration=TWO_HOURS) as window:
            with pytest.raises(RuntimeError, match="created when its with block ends"):
                _ = window.closed
            step()

    assert window.closed.task_id == "window_closed"
