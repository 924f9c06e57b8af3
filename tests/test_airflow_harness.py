"""What the suite's real-Airflow harness promises the end-to-end tests, on every supported release."""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseHook, BaseOperator, setup, task, teardown
from airflow.triggers.base import BaseTrigger, TriggerEvent

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
module_log = logging.getLogger("airflow_provider_spaces.tests.harness")


class EchoTrigger(BaseTrigger):
    """Fire at once with the value it was given."""

    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"value": self.value}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("echo trigger fires with %s", self.value)
        yield TriggerEvent({"status": "fired", "value": self.value})


class DeferringOperator(BaseOperator):
    """Defer to the echo trigger, then return the event it got."""

    def execute(self, context: Any) -> None:
        self.log.info("deferring to the echo trigger")
        self.defer(trigger=EchoTrigger("ping"), method_name="resume")

    def resume(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("resumed with status %s", event["status"])
        return event


def _failed_gpu_window() -> DAG:
    """Build a window whose setup succeeds, whose work fails, and whose teardown must still run."""
    with DAG("harness_window", schedule=None, start_date=START) as dag:

        @setup
        def upgrade() -> str:
            module_log.info("upgrade: a10g-large requested")
            return "a10g-large"

        @task
        def work() -> None:
            raise RuntimeError("training crashed")

        @teardown
        def downgrade() -> str:
            module_log.info("downgrade: back to cpu-basic")
            return "cpu-basic"

        up, down = upgrade(), downgrade()
        up >> work() >> down
        up >> down

    return dag


def test_run_dag_reports_states_logs_and_xcoms_of_setup_work_and_teardown(run_dag):
    result = run_dag(_failed_gpu_window())

    assert result.state == "failed"
    assert {key: run.state for key, run in result.tasks.items()} == {
        "upgrade": "success",
        "work": "failed",
        "downgrade": "success",
    }
    assert result.tasks["upgrade"].xcom == {"return_value": "a10g-large"}
    assert result.tasks["downgrade"].xcom == {"return_value": "cpu-basic"}
    assert "upgrade: a10g-large requested" in result.tasks["upgrade"].log
    assert "training crashed" in result.tasks["work"].log
    assert "downgrade: back to cpu-basic" in result.tasks["downgrade"].log
    assert "downgrade: back to cpu-basic" not in result.tasks["upgrade"].log


def test_deferred_task_runs_its_trigger_inline_and_resumes_with_the_event(run_dag):
    with DAG("harness_deferral", schedule=None, start_date=START) as dag:
        DeferringOperator(task_id="wait")

    result = run_dag(dag)

    assert result.state == "success"
    wait = result.tasks["wait"]
    assert wait.state == "success"
    assert wait.xcom == {"return_value": {"status": "fired", "value": "ping"}}
    assert "deferring to the echo trigger" in wait.log
    assert "echo trigger fires with ping" in wait.log
    assert "resumed with status fired" in wait.log


def test_connection_defined_for_a_test_reaches_a_task_intact(run_dag, airflow_connection):
    airflow_connection(
        "harness_hub",
        host="http://127.0.0.1:8080",
        password="hf_harness_token",
        extra={"read_timeout": 7},
    )
    with DAG("harness_connection", schedule=None, start_date=START) as dag:

        @task
        def read_connection() -> dict[str, Any]:
            conn = BaseHook.get_connection("harness_hub")
            return {
                "conn_type": conn.conn_type,
                "host": conn.host,
                "extra": conn.extra_dejson,
                "password_intact": conn.password == "hf_harness_token",
            }

        read_connection()

    result = run_dag(dag)

    assert result.tasks["read_connection"].xcom["return_value"] == {
        "conn_type": "huggingface_spaces",
        "host": "http://127.0.0.1:8080",
        "extra": {"read_timeout": 7},
        "password_intact": True,
    }


def test_airflow_home_and_database_belong_to_the_session_not_the_developer(airflow_db):
    home = Path(os.environ["AIRFLOW_HOME"])

    assert home.parent.name.startswith("spaces-airflow-")
    assert home != Path.home() / "airflow"
    assert airflow_db.parent == home
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{airflow_db}"
