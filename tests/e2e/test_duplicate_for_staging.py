"""The staging-copy example DAG, run end to end with ``dag.test()`` against the emulated Hub: the copy
gets its hardware, sleep time, variables and secrets, runs, passes the smoke check and ends paused;
run again for the same release, it is restarted rather than copied twice; and no secret value nor
the token leaves the run, not even in the error of a Hub that echoes a secret back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags_examples" / "duplicate_for_staging.py"
PRODUCTION = "demo/app"
COPY = "demo/app-v42"
# Values whose names Airflow would not mask on its own ("key", "secret", "token" are in neither).
API_VALUE = "sk-live-71c0e9d2b4a85f"
WEBHOOK_VALUE = "https://hooks.example.invalid/T0-5e4d3c"


@pytest.fixture
def staging_dag(emulated_hub, airflow_connection, monkeypatch, load_example):
    """Return the DAG, its secret values defined as a deployment would: a connection, a Variable."""
    airflow_connection("staging_model_api", conn_type="generic", password=API_VALUE)
    monkeypatch.setenv("AIRFLOW_VAR_STAGING_ALERTS_WEBHOOK", WEBHOOK_VALUE)
    settings = {
        "SPACES_STAGING_PRODUCTION_SPACE_ID": PRODUCTION,
        "SPACES_STAGING_POLL_SECONDS": "0.05",
        "SPACES_STAGING_TIMEOUT_SECONDS": "3600",
    }
    module = load_example(DAG_FILE.name, **settings)
    emulated_hub.add_space(PRODUCTION, hardware="a10g-small", variables={"MODEL": "prod-model"})
    return module.dag


def states(result: Any) -> dict[str, str | None]:
    return {key: task.state for key, task in result.tasks.items()}


def rendered_fields(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Rendered).where(Rendered.dag_id == dag_id, Rendered.run_id == run_id))
        return {row.task_id: dict(row.rendered_fields) for row in rows}


def assert_nothing_secret_leaves(result: Any, token: str) -> None:
    places = {
        "task logs": result.log,
        "XCom values": json.dumps({key: task.xcom for key, task in result.tasks.items()}, default=str),
        "rendered fields": json.dumps(rendered_fields("duplicate_for_staging", result.run_id), default=str),
    }
    for value in (API_VALUE, WEBHOOK_VALUE, token):
        leaks = [place for place, text in places.items() if value in text]
        assert leaks == [], f"{value[:6]}... found in {leaks}"


def writes(hub: Any, space_id: str) -> list[str]:
    return [e["path"].rsplit("/", 1)[-1] for e in hub.request_log(space_id) if e["method"] != "GET"]


def test_the_copy_gets_its_settings_passes_the_smoke_check_and_ends_paused(
    emulated_hub, staging_dag, run_dag
):
    result = run_dag(staging_dag, run_conf={"release": "v42"})

    assert result.state == "success"
    assert set(states(result).values()) == {"success"}
    copy = emulated_hub.hub.spaces[COPY]
    assert {key: entry["value"] for key, entry in copy.secrets.items()} == {
        "MODEL_API_KEY": API_VALUE,
        "ALERTS_WEBHOOK": WEBHOOK_VALUE,
    }
    assert {key: entry["value"] for key, entry in copy.variables.items()} == {
        "MODEL": "prod-model",
        "DEPLOYMENT": "staging",
        "RELEASE": "v42",
        "LOG_LEVEL": "debug",
    }
    runtime = emulated_hub.runtime(COPY)
    assert (runtime["stage"], runtime["hardware"]["requested"], runtime["gcTimeout"]) == (
        "PAUSED",
        "t4-small",
        900,
    )
    assert result.tasks["smoke_check"].xcom["return_value"]["secrets"] == ["ALERTS_WEBHOOK", "MODEL_API_KEY"]
    assert result.tasks["duplicate"].xcom["_link_SpaceLink"] == f"{emulated_hub.url}/spaces/{COPY}"
    assert writes(emulated_hub, PRODUCTION) == ["duplicate"]
    assert writes(emulated_hub, COPY) == ["pause"]
    assert_nothing_secret_leaves(result, emulated_hub.write_token)


def test_running_the_same_release_again_restarts_the_copy_instead_of_copying_twice(
    emulated_hub, staging_dag, run_dag
):
    run_dag(staging_dag, run_conf={"release": "v42"})

    again = run_dag(staging_dag, run_conf={"release": "v42"})

    assert set(states(again).values()) == {"success"}
    assert writes(emulated_hub, PRODUCTION) == ["duplicate"]
    assert writes(emulated_hub, COPY) == ["pause", "restart", "pause"]
    assert "Space demo/app-v42 already exists" in again.tasks["duplicate"].log
    assert emulated_hub.runtime(COPY)["stage"] == "PAUSED"


def test_a_hub_that_echoes_a_secret_in_its_error_leaks_nothing(emulated_hub, staging_dag, run_dag):
    emulated_hub.add_fault(
        "refuse", space_id=PRODUCTION, action="duplicate", status=400, message=f"{API_VALUE} is malformed"
    )

    result = run_dag(staging_dag, run_conf={"release": "v42"})

    assert result.state == "failed"
    assert states(result)["duplicate"] == "failed"
    assert result.tasks["duplicate"].try_number == 1
    assert "is malformed" in result.tasks["duplicate"].log  # the Hub's error is shown...
    assert_nothing_secret_leaves(result, emulated_hub.write_token)  # ...without the value
    assert COPY not in emulated_hub.hub.spaces


def test_a_copy_that_fails_to_build_fails_the_run_and_is_still_paused(emulated_hub, staging_dag, run_dag):
    # Every build of the copy fails: on a loaded machine "start" may find the first one failed
    # already and restart the copy, whose rebuild must fail too for the run to mean the same.
    emulated_hub.add_fault("build_error", space_id=COPY, message="CUDA driver mismatch")

    result = run_dag(staging_dag, run_conf={"release": "v42"})

    assert result.state == "failed"
    assert states(result) == {
        "duplicate": "success",
        "start": "success",
        "wait_until_running": "failed",
        "smoke_check": "upstream_failed",
        "pause": "success",
        "report": "upstream_failed",
    }
    assert "is in BUILD_ERROR: CUDA driver mismatch" in result.tasks["wait_until_running"].log
    assert emulated_hub.runtime(COPY)["stage"] == "PAUSED"
