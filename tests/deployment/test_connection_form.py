"""The connection form and its "Test" button as a running api-server serves them, and the CLI test.

Only the api-server runs (``AirflowStack`` with one component), on a copy of the suite's migrated
database, with ``[core] test_connection = Enabled``: the setting that turns on the "Test" button,
``POST /api/v2/connections/test`` and ``airflow connections test`` on Airflow 3.1 and 3.3 alike.
The form's metadata comes from ``GET /ui/connections/hook_meta``, which the UI reads to draw the
form of every connection type; the test calls reach an emulated Hub on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from airflow_provider_spaces._compat import AIRFLOW_V_3_2_PLUS
from airflow_provider_spaces._provider_info import EXTRA_FIELDS, HOOK_CLASS
from airflow_provider_spaces.emulator.server import HubEmulator

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

CONN_TYPE = "huggingface_spaces"
CONN_ID = "spaces_form"
BAD_CONN_ID = "spaces_form_bad_token"
BAD_TOKEN = "hf_not_a_token_the_hub_knows"
ACCOUNT = "form-tester"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubEmulator]:
    with HubEmulator() as emulated:
        yield emulated


@pytest.fixture(scope="module")
def token(hub: HubEmulator) -> str:
    return hub.add_token(ACCOUNT, role="write")


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory,
    hub: HubEmulator,
    token: str,
    airflow_db: Path,
    airflow_stack: ModuleType,
) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("api-server-home")
    dags = tmp_path_factory.mktemp("no-dags")
    # The suite's migrated database spares the stack a migration of its own.
    shutil.copy(airflow_db, home / "airflow.db")
    connection = {"conn_type": CONN_TYPE, "host": hub.url, "password": token}
    bad_connection = {**connection, "password": BAD_TOKEN}
    env = {
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
        f"AIRFLOW_CONN_{BAD_CONN_ID.upper()}": json.dumps(bad_connection),
        # Nothing may default to the real Hub.
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    with airflow_stack.AirflowStack(home=home, dags_folder=dags, env=env, components=["api-server"]) as stack:
        yield stack


@pytest.fixture(scope="module")
def served_form(api_server: Any) -> dict[str, Any]:
    """Return what the api-server tells the UI about our connection type."""
    response = requests.get(f"{api_server.api_url}/ui/connections/hook_meta", timeout=120)
    response.raise_for_status()
    forms = {meta["connection_type"]: meta for meta in response.json()}
    return forms[CONN_TYPE]


def test_the_served_form_names_the_type_and_relabels_the_standard_fields(served_form):
    fields = served_form["standard_fields"]

    assert (served_form["hook_name"], served_form["hook_class_name"]) == ("Hugging Face Spaces", HOOK_CLASS)
    assert (fields["host"]["title"], fields["host"]["placeholder"]) == (
        "Hub endpoint",
        "https://huggingface.co",
    )
    assert fields["password"]["title"] == "Hugging Face token"
    assert [name for name in ("url_schema", "port", "login") if fields[name]["hidden"]] == [
        "url_schema",
        "port",
        "login",
    ]


def test_the_served_form_offers_every_extra_field_as_an_optional_whole_number(served_form):
    extra = served_form["extra_fields"]

    assert list(extra) == list(EXTRA_FIELDS)
    for name, field in EXTRA_FIELDS.items():
        assert extra[name]["schema"]["title"] == field.label
        assert extra[name]["schema"]["type"] == ["integer", "null"]
        assert extra[name]["description"] == field.description


def test_the_ui_is_told_to_show_the_test_button(api_server):
    response = requests.get(f"{api_server.api_url}/ui/config", timeout=30)

    assert response.json()["test_connection"] == "Enabled"


def test_the_test_button_reports_the_account_and_never_the_token(api_server, hub, token):
    body = {"connection_id": "unsaved", "conn_type": CONN_TYPE, "host": hub.url, "password": token}

    result = api_server.api("POST", "/connections/test", body)

    assert result == {
        "status": True,
        "message": f"Connected to {hub.url} as {ACCOUNT} (token role: write)",
    }


def test_the_test_button_shows_the_hubs_refusal_of_a_bad_token(api_server, hub):
    body = {"connection_id": "unsaved", "conn_type": CONN_TYPE, "host": hub.url, "password": BAD_TOKEN}

    result = api_server.api("POST", "/connections/test", body)

    assert result["status"] is False
    assert "401" in result["message"]
    assert BAD_TOKEN not in result["message"]


def test_the_cli_test_succeeds_with_the_connection_defined_in_the_environment(api_server, hub, token):
    done = api_server.airflow("connections", "test", CONN_ID, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connection success!" in done.stdout
    assert token not in done.stdout + done.stderr


def test_the_cli_test_of_a_bad_token_says_why(api_server):
    done = api_server.airflow("connections", "test", BAD_CONN_ID, check=False)

    # Airflow 3.1 prints the failure but exits with 0; 3.3 (the other release tested) exits with 1.
    assert done.returncode == (1 if AIRFLOW_V_3_2_PLUS else 0)
    assert "Connection failed!" in done.stdout
    assert "401" in done.stdout
    assert BAD_TOKEN not in done.stdout + done.stderr


def test_without_the_setting_the_cli_refuses_to_test(api_server):
    env = {**api_server.environment(), "AIRFLOW__CORE__TEST_CONNECTION": "Disabled"}

    done = subprocess.run(
        [api_server.python, "-m", "airflow", "connections", "test", CONN_ID],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 1
    assert "Testing connections is disabled" in done.stdout
