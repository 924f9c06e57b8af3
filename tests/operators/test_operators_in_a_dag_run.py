"""The operators inside a real DAG run (``dag.test()``): templated fields rendered and stored, the
runtime dict as XCom, and the "Space" and "Space settings" links persisted where the API server
reads them."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_spaces.operators.spaces import (
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
    SpacePauseOperator,
)

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SPACE = "demo/app"
GPU = "a10g-large"


def rendered_fields(dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Return the rendered template fields Airflow stored for each task of a run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Rendered).where(Rendered.dag_id == dag_id, Rendered.run_id == run_id))
        return {row.task_id: dict(row.rendered_fields) for row in rows}


def test_templated_fields_are_rendered_checked_and_stored(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    with DAG(
        "templated_upgrade",
        schedule=None,
        start_date=START,
        params={"space": SPACE, "gpu": GPU, "sleep": 3600},
    ) as dag:
        SpaceHardwareUpgradeOperator(
            task_id="upgrade",
            space_id="{{ params.space }}",
            hardware="{{ params.gpu }}",
            sleep_time="{{ params.sleep }}",
            poll_interval=0.05,
        )

    result = run_dag(dag)

    assert result.tasks["upgrade"].state == "success"
    assert rendered_fields("templated_upgrade", result.run_id)["upgrade"] == {
        "space_id": SPACE,
        "hardware": GPU,
        "sleep_time": "3600",
    }
    assert emulated_hub.runtime(SPACE)["gcTimeout"] == 3600


def test_each_task_returns_the_runtime_dict_and_links_to_the_space_and_its_settings(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU)
    with DAG("window_in_brief", schedule=None, start_date=START) as dag:
        down = SpaceHardwareDowngradeOperator(task_id="downgrade", space_id=SPACE, poll_interval=0.05)
        down >> SpacePauseOperator(task_id="pause", space_id=SPACE)

    result = run_dag(dag)

    url = f"{emulated_hub.url}/spaces/{SPACE}"
    assert result.tasks["downgrade"].xcom == {
        "return_value": {
            "space_id": SPACE,
            "stage": "RUNNING",
            "hardware": "cpu-basic",
            "requested_hardware": "cpu-basic",
            "sleep_time": 172800,
            "storage": None,
            "url": url,
        },
        "_link_SpaceLink": url,
        "_link_SpaceSettingsLink": f"{url}/settings",
    }
    assert result.tasks["pause"].xcom["return_value"]["stage"] == "PAUSED"
    assert result.tasks["pause"].xcom["_link_SpaceLink"] == url
    assert result.tasks["pause"].xcom["_link_SpaceSettingsLink"] == f"{url}/settings"


def test_a_task_that_fails_on_the_hub_still_links_to_the_space_and_its_settings(emulated_hub, run_dag):
    with DAG("failing_link", schedule=None, start_date=START) as dag:
        SpacePauseOperator(task_id="pause", space_id="demo/missing")

    result = run_dag(dag)

    assert result.tasks["pause"].state == "failed"
    assert result.tasks["pause"].try_number == 1
    url = f"{emulated_hub.url}/spaces/demo/missing"
    assert result.tasks["pause"].xcom["_link_SpaceLink"] == url
    assert result.tasks["pause"].xcom["_link_SpaceSettingsLink"] == f"{url}/settings"


def test_the_serialized_task_names_both_links_and_their_xcom_keys():
    from airflow.serialization import serialized_objects

    # The operator serializer's name changed after 3.1; both keep links as name -> XCom key.
    serializer = (
        getattr(serialized_objects, "OperatorSerialization", None)
        or serialized_objects.SerializedBaseOperator
    )
    task = SpacePauseOperator(task_id="pause", space_id=SPACE)

    serialized = serializer.serialize_operator(task)

    assert serialized["_operator_extra_links"] == {
        "Space": "_link_SpaceLink",
        "Space settings": "_link_SpaceSettingsLink",
    }
