"""The example DAGs take nothing from the Hub but the Airflow connection's token and endpoint: run
as shipped, with only a connection pointing at the emulator, the readiness pipeline works, and
nothing in the DAG files names a Hub address, so against the real Hub the same connection without
an endpoint (only a token) is all that changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_provider_spaces.hooks.connection import PUBLIC_HUB, default_endpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "dags_examples").glob("*.py"))


def test_the_ready_pipeline_runs_as_shipped_with_only_a_connection(
    emulated_hub, run_dag, monkeypatch, load_example
):
    for name in [name for name in os.environ if name.startswith("SPACES_")]:
        monkeypatch.delenv(name)
    emulated_hub.seed_demo()  # the Spaces the README's walk-through starts the emulator with
    # Real time, as in the walk-through: at the suite's 60x, a task slow to start on a loaded
    # machine would find the demo Space asleep after its hour of sleep time.
    emulated_hub.set_speed(1)
    module = load_example("space_ready_pipeline.py")

    result = run_dag(module.dag)

    # The connection the run used holds the endpoint and the token, and nothing else.
    assert json.loads(os.environ["AIRFLOW_CONN_HUGGINGFACE_DEFAULT"]) == {
        "conn_type": "huggingface_spaces",
        "host": emulated_hub.url,
        "password": emulated_hub.write_token,
    }
    assert result.state == "success"
    assert result.tasks["use_the_space"].xcom["return_value"] == {
        "space_id": "demo-org/team-app",
        "hardware": "t4-small",
        "url": f"{emulated_hub.url}/spaces/demo-org/team-app",
    }


def test_a_connection_without_an_endpoint_means_the_public_hub():
    # Read from an empty environment: the suite itself points $HF_ENDPOINT at a closed local port.
    assert default_endpoint({}) == PUBLIC_HUB == "https://huggingface.co"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_no_example_dag_names_a_hub_address_a_token_or_the_emulator(path):
    source = path.read_text()

    for needle in (
        "http://",
        "https://",
        "127.0.0.1",
        "localhost",
        "hf_",
        "airflow_provider_spaces.emulator",
    ):
        assert needle not in source, needle
