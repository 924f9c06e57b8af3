"""A DAG run that sets secrets, copies a Space with secrets, and fails on a Hub that echoes a secret
back: neither the token nor a secret value appears in a task log, an XCom value, the rendered
fields Airflow stores, or an exception."""

from __future__ import annotations

import datetime
import json
from typing import Any

from airflow.sdk import DAG

from airflow_provider_spaces.operators.spaces import SpaceDuplicateOperator, SpaceSecretsOperator

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SPACE = "demo/app"
REFUSING = "demo/refusing"
# Variable names without "secret", "token" or "key": Airflow would mask those by name on its own.
API_VALUE = "sk-live-3b9e1f0c7a24d6"
WEBHOOK_VALUE = "https://hooks.example.invalid/T0-9f8e7d"


def rendered_fields(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Rendered).where(Rendered.dag_id == dag_id, Rendered.run_id == run_id))
        return {row.task_id: dict(row.rendered_fields) for row in rows}


def test_no_secret_value_or_token_leaves_the_tasks(emulated_hub, run_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_MODEL_ACCESS", API_VALUE)
    monkeypatch.setenv("AIRFLOW_VAR_ALERTS_URL", WEBHOOK_VALUE)
    emulated_hub.add_space(SPACE)
    emulated_hub.add_space(REFUSING)
    emulated_hub.add_fault(
        "refuse", space_id=REFUSING, action="secrets", status=400, message=f"{API_VALUE} is not accepted"
    )
    secrets = {"API_KEY": "{{ var.value.model_access }}", "ALERTS": "{{ var.value.alerts_url }}"}
    with DAG("secrets_stay_secret", schedule=None, start_date=START) as dag:
        SpaceSecretsOperator(task_id="set_secrets", space_id=SPACE, secrets=secrets)
        SpaceDuplicateOperator(
            task_id="copy_with_secrets",
            space_id=SPACE,
            target_space_id="demo/app-copy",
            secrets=secrets,
            poll_interval=0.05,
        )
        SpaceSecretsOperator(task_id="refused", space_id=REFUSING, secrets=secrets)

    result = run_dag(dag)

    # The values did reach the Hub, so the run really handled them.
    assert emulated_hub.hub.spaces[SPACE].secrets["API_KEY"]["value"] == API_VALUE
    assert emulated_hub.hub.spaces["demo/app-copy"].secrets["ALERTS"]["value"] == WEBHOOK_VALUE
    assert {key: task.state for key, task in result.tasks.items()} == {
        "set_secrets": "success",
        "copy_with_secrets": "success",
        "refused": "failed",
    }
    assert "is not accepted" in result.tasks["refused"].log  # the exception is in the log...

    rendered = rendered_fields("secrets_stay_secret", result.run_id)
    assert rendered["set_secrets"]["space_id"] == SPACE
    places = {
        "task logs": result.log,
        "XCom values": json.dumps({key: task.xcom for key, task in result.tasks.items()}, default=str),
        "rendered fields": json.dumps(rendered, default=str),
    }
    for value in (API_VALUE, WEBHOOK_VALUE, emulated_hub.write_token):
        leaks = [place for place, text in places.items() if value in text]
        assert leaks == [], f"{value[:6]}... found in {leaks}"  # ...but no value is
