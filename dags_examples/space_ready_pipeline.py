"""Run downstream work only once a Hugging Face Space is ready: RUNNING on the expected hardware.

    wait_until_ready >> use_the_space

- ``wait_until_ready`` (``SpaceStageSensor``) reads the Space's runtime until it is ``RUNNING`` on
  ``SPACES_READY_HARDWARE``. It fails at once, quoting the Space's own error, when waiting cannot
  help: a build or runtime error, a paused Space, another flavor requested. It reads once, and when
  the Space is not ready yet it defers: Airflow's triggerer does the reading (every
  ``SPACES_READY_POKE_SECONDS``, less often while nothing changes) and no worker slot is held.
  A deployment without a triggerer sets ``SPACES_READY_DEFERRABLE=false``: the sensor then waits in
  ``reschedule`` mode, which frees the worker slot between two reads, with the same outcome.
- ``use_the_space`` gets the runtime the sensor saw (URL, hardware, stage) from XCom and does the
  work. Here it only reports what it would call; put the real calls to the Space's app there.

The DAG has no schedule: trigger it by hand, from an asset or from the DAG that needs the Space.
Its only inputs from the Hub are the Airflow connection's token and endpoint; everything else comes
from the ``SPACES_READY_*`` environment variables below. Parsing this file looks up no connection
and sends no request.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

SPACE_ID = os.environ.get("SPACES_READY_SPACE_ID", "demo-org/team-app")
# The flavor the Space must run on; empty accepts any.
HARDWARE = os.environ.get("SPACES_READY_HARDWARE", "t4-small") or None
CONN_ID = os.environ.get("SPACES_READY_CONN_ID", "huggingface_default")
POKE_SECONDS = float(os.environ.get("SPACES_READY_POKE_SECONDS", "30"))
TIMEOUT_SECONDS = float(os.environ.get("SPACES_READY_TIMEOUT_SECONDS", str(30 * 60)))
DEFERRABLE = os.environ.get("SPACES_READY_DEFERRABLE", "true").strip().lower() not in {"false", "0", "no"}

log = logging.getLogger(__name__)


@task
def use_the_space(runtime: dict[str, Any]) -> dict[str, Any]:
    """Do the work that needs the Space; the placeholder reports what it would call."""
    # The real work goes here: call the Space's app (its page is runtime["url"]), for instance
    # with gradio_client, now that it is known to run on the expected hardware.
    log.info("Space %s is %s on %s: calling it", runtime["space_id"], runtime["stage"], runtime["hardware"])
    return {"space_id": runtime["space_id"], "hardware": runtime["hardware"], "url": runtime["url"]}


with DAG(
    dag_id="space_ready_pipeline",
    description="Wait until a Space runs on its hardware, failing at once on its error, then use it",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["huggingface"],
) as dag:
    wait_until_ready = SpaceStageSensor(
        task_id="wait_until_ready",
        space_id=SPACE_ID,
        hardware=HARDWARE,
        spaces_conn_id=CONN_ID,
        deferrable=DEFERRABLE,
        mode="reschedule",
        poke_interval=POKE_SECONDS,
        timeout=TIMEOUT_SECONDS,
    )
    use_the_space(wait_until_ready.output)
