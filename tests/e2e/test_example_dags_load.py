"""Every example DAG loads into a DagBag, as Airflow's DAG processor parses it: no import error, no
connection looked up and no connection opened while parsing."""

from __future__ import annotations

import socket
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "dags_examples"


def _dagbag_class():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1 keeps it with the models
        from airflow.models.dagbag import DagBag
    return DagBag


@pytest.fixture
def parse_time_guard(monkeypatch):
    """Make any connection lookup or network connection raise, and record the attempts."""
    from airflow.models.connection import Connection as StoredConnection
    from airflow.sdk.definitions.connection import Connection

    attempts: list[str] = []

    def refuse(what: str):
        def refused(*args, **kwargs):
            attempts.append(what)
            raise AssertionError(f"{what} while parsing a DAG file")

        return refused

    monkeypatch.setattr(Connection, "get", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(Connection, "async_get", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(
        StoredConnection, "get_connection_from_secrets", classmethod(refuse("connection lookup"))
    )
    monkeypatch.setattr(socket.socket, "connect", refuse("network connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("network connection"))
    return attempts


def test_the_guard_catches_a_connection_lookup(parse_time_guard):
    from airflow.sdk import BaseHook

    with pytest.raises(AssertionError, match="connection lookup while parsing"):
        BaseHook.get_connection("huggingface_default")

    assert parse_time_guard == ["connection lookup"]


def test_every_example_dag_loads_without_errors_lookups_or_network(parse_time_guard):
    files = sorted(EXAMPLES.glob("*.py"))

    bag = _dagbag_class()(dag_folder=str(EXAMPLES), safe_mode=False)

    assert bag.import_errors == {}
    assert parse_time_guard == []
    assert {Path(dag.fileloc).name for dag in bag.dags.values()} == {path.name for path in files}
    assert {"gpu_training_window", "space_guard"} <= set(bag.dags)


def test_the_training_window_is_a_nightly_window_in_its_time_zone_with_a_failing_teardown(parse_time_guard):
    bag = _dagbag_class()(dag_folder=str(EXAMPLES / "gpu_training_window.py"))
    dag = bag.dags["gpu_training_window"]

    assert dag.schedule == "0 1 * * *"
    assert dag.timezone == pendulum.timezone("Europe/Paris")
    assert dag.get_task("take_gpu_lease").is_setup and dag.get_task("upgrade").is_setup
    downgrade = dag.get_task("downgrade")
    assert downgrade.is_teardown and downgrade.on_failure_fail_dagrun
    # The failsafe sleep time is the lease's length: two hours of window and a quarter of grace.
    assert dag.get_task("upgrade").sleep_time == 2 * 3600 + 15 * 60
    assert dag.get_task("wait_for_gpu").hardware == "a10g-large"
    assert set(dag.get_task("publish").upstream_task_ids) == {"train", "downgrade"}
    # Nothing after the closing teardown, which must stay among the tasks that judge the run.
    assert dag.get_task("window_closed").downstream_task_ids == set()


def test_the_cost_schedule_maps_one_task_per_space_within_a_budget(parse_time_guard):
    bag = _dagbag_class()(dag_folder=str(EXAMPLES / "cost_saving_schedule.py"))
    dag = bag.dags["cost_saving_schedule"]

    assert dag.schedule == "*/30 * * * *"
    for task_id in ("bring_back", "pause_off_hours", "downgrade_off_hours"):
        mapped = dag.get_task(task_id)
        assert type(mapped).__name__ == "MappedOperator"
        assert mapped.partial_kwargs["max_active_tis_per_dagrun"] == 16
        assert mapped.partial_kwargs["map_index_template"] == "{{ task.space_id }}"
    assert dag.get_task("bring_back").upstream_task_ids == {"to_bring_back"}


def test_the_staging_copy_is_paused_by_a_teardown_and_its_secrets_are_templates(parse_time_guard):
    bag = _dagbag_class()(dag_folder=str(EXAMPLES / "duplicate_for_staging.py"))
    dag = bag.dags["duplicate_for_staging"]

    assert dag.get_task("duplicate").is_setup and dag.get_task("start").is_setup
    pause = dag.get_task("pause")
    assert pause.is_teardown and pause.on_failure_fail_dagrun
    assert all(value.startswith("{{ ") for value in dag.get_task("duplicate").secrets.values())


def test_the_ready_pipeline_gates_the_work_on_a_rescheduling_sensor(parse_time_guard):
    bag = _dagbag_class()(dag_folder=str(EXAMPLES / "space_ready_pipeline.py"))
    dag = bag.dags["space_ready_pipeline"]

    sensor = dag.get_task("wait_until_ready")
    assert (sensor.mode, sensor.hardware) == ("reschedule", "t4-small")
    assert dag.get_task("use_the_space").upstream_task_ids == {"wait_until_ready"}


def test_the_guard_runs_every_five_minutes_on_the_demo_space_and_downgrades(parse_time_guard):
    bag = _dagbag_class()(dag_folder=str(EXAMPLES / "space_guard.py"))
    dag = bag.dags["space_guard"]
    guard = dag.get_task("guard")

    assert dag.max_active_runs == 1 and not dag.catchup
    assert (guard.spaces, guard.policy, guard.is_dry_run) == (["demo/gpu-trainer"], "downgrade", False)
