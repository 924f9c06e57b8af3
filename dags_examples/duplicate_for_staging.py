"""Make a staging copy of a production Space, check that it works, and pause it.

    duplicate (setup) >> start (setup) >> wait_until_running >> smoke_check >> pause (teardown)
        >> report

- ``duplicate`` copies the production Space to ``<production>-<release>`` (the ``release`` param,
  ``staging`` by default), with its own hardware, sleep time, variables and secrets. The secret
  values come from an Airflow connection (its password) and an Airflow Variable, rendered only
  when the task runs and masked from then on: they never reach a log line, XCom, the rendered
  fields Airflow stores, or an error message. The task sends the request and does not wait.
- ``start`` makes sure the copy runs on its hardware: nothing to do for a fresh copy, a restart
  for the copy of an earlier run of the same release, which was left paused. A copy that exists
  already keeps the settings and secrets it was made with.
- ``wait_until_running`` waits until the copy runs on its hardware and fails at once, with the
  Hub's words, when its build fails.
- ``smoke_check`` checks that the copy has its hardware, its secrets (by name: the Hub never
  returns a value) and its variables; a real check would call the copy's app there too.
- ``pause`` stops the copy, and its bill, whatever happened before: it is a teardown, and its
  failure fails the run, since the copy may then still be costing money.
- ``report`` says which copy passed, once it is paused. It also keeps a failed check visible in
  the run's state: Airflow judges a run by its last tasks, and a teardown that can fail the run
  counts as one, which would otherwise hide the failure of ``smoke_check``.

Every constant can be overridden from the environment (``SPACES_STAGING_*``). Parsing this file
looks up no connection and no Variable, and sends no request.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.operators.spaces import (
    SpaceDuplicateOperator,
    SpaceHardwareUpgradeOperator,
    SpacePauseOperator,
)
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

PRODUCTION_SPACE_ID = os.environ.get("SPACES_STAGING_PRODUCTION_SPACE_ID", "demo/private-app")
HARDWARE = os.environ.get("SPACES_STAGING_HARDWARE", "t4-small")
# Idle seconds after which the copy sleeps on its hardware, should the pause never come.
SLEEP_SECONDS = int(os.environ.get("SPACES_STAGING_SLEEP_SECONDS", "900"))
CONN_ID = os.environ.get("SPACES_STAGING_CONN_ID", "huggingface_default")
# Where the copy's secret values live: the password of an Airflow connection, and a Variable.
API_KEY_CONN_ID = os.environ.get("SPACES_STAGING_API_KEY_CONN_ID", "staging_model_api")
WEBHOOK_VARIABLE = os.environ.get("SPACES_STAGING_WEBHOOK_VARIABLE", "staging_alerts_webhook")
POLL_SECONDS = float(os.environ.get("SPACES_STAGING_POLL_SECONDS", "30"))
TIMEOUT_SECONDS = float(os.environ.get("SPACES_STAGING_TIMEOUT_SECONDS", str(30 * 60)))

STAGING_SPACE_ID = PRODUCTION_SPACE_ID + "-{{ params.release }}"
# Templates, rendered when the task runs: the DAG file never holds a value.
SECRETS = {
    "MODEL_API_KEY": "{{ conn." + API_KEY_CONN_ID + ".password }}",
    "ALERTS_WEBHOOK": "{{ var.value." + WEBHOOK_VARIABLE + " }}",
}
VARIABLES = {"DEPLOYMENT": "staging", "RELEASE": "{{ params.release }}", "LOG_LEVEL": "debug"}

log = logging.getLogger(__name__)


@task
def smoke_check(runtime: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check the copy's hardware, secret names and variables; fail naming what is missing."""
    space_id = runtime["space_id"]
    release = (params or {}).get("release", "staging")
    hook = SpacesHook(CONN_ID)
    try:
        secrets = hook.get_space_secrets(space_id)
        variables = {key: variable.value for key, variable in hook.get_space_variables(space_id).items()}
    finally:
        hook.close()

    wanted = {**VARIABLES, "RELEASE": release}
    problems = [f"runs on {runtime['hardware']}, not {HARDWARE}"] if runtime["hardware"] != HARDWARE else []
    problems += [f"has no secret {key}" for key in sorted(set(SECRETS) - set(secrets))]
    problems += [
        f"has variable {key}={variables.get(key)!r}, not {value!r}"
        for key, value in wanted.items()
        if variables.get(key) != value
    ]
    if problems:
        raise RuntimeError(f"Staging copy {space_id} " + "; ".join(problems) + f" (see {runtime['url']})")

    # A real smoke test also calls the copy's app here, through runtime["url"].
    log.info("Staging copy %s runs on %s with its secrets and variables", space_id, runtime["hardware"])
    return {"space_id": space_id, "secrets": sorted(secrets), "variables": sorted(variables)}


@task
def report(checked: dict[str, Any]) -> None:
    """Say which staging copy passed its smoke check; it is paused by now."""
    log.info("Staging copy %s passed its smoke check and is paused", checked["space_id"])


with DAG(
    dag_id="duplicate_for_staging",
    description="Copy a production Space to staging with its own secrets, check it, and pause it",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"release": Param("staging", type="string", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")},
    tags=["huggingface", "release"],
) as dag:
    duplicate = SpaceDuplicateOperator(
        task_id="duplicate",
        space_id=PRODUCTION_SPACE_ID,
        target_space_id=STAGING_SPACE_ID,
        visibility="private",
        hardware=HARDWARE,
        sleep_time=SLEEP_SECONDS,
        secrets=SECRETS,
        variables=VARIABLES,
        wait_for_running=False,
        spaces_conn_id=CONN_ID,
    )
    start = SpaceHardwareUpgradeOperator(
        task_id="start",
        space_id=STAGING_SPACE_ID,
        hardware=HARDWARE,
        wait_for_running=False,
        spaces_conn_id=CONN_ID,
    )
    wait_until_running = SpaceStageSensor(
        task_id="wait_until_running",
        space_id=STAGING_SPACE_ID,
        hardware=HARDWARE,
        poke_interval=POLL_SECONDS,
        timeout=TIMEOUT_SECONDS,
        spaces_conn_id=CONN_ID,
    )
    pause = SpacePauseOperator(task_id="pause", space_id=STAGING_SPACE_ID, spaces_conn_id=CONN_ID)

    checked = smoke_check(wait_until_running.output)
    duplicate >> start >> wait_until_running >> checked
    checked >> pause.as_teardown(setups=[duplicate, start], on_failure_fail_dagrun=True)
    pause >> report(checked)
