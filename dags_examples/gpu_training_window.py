"""Rent a GPU for a nightly training window, and always give it back.

Every night at 01:00 (in the time zone below), this DAG moves a Hugging Face Space to a GPU,
waits until the Space really runs there, does the work, and puts the Space back on the free
``cpu-basic`` hardware, whether the work succeeded or not:

    upgrade (setup) >> wait_for_gpu >> train >> downgrade (teardown) >> publish

- ``upgrade`` only asks for the GPU, with a sleep time as a failsafe: should everything after it
  fail, the idle Space falls asleep and stops costing money. It does not wait, because Airflow
  runs a teardown only when its setup succeeded: the shorter the setup, the safer the window.
- ``wait_for_gpu`` waits until the Space runs on the GPU, and fails at once (with the Hub's
  words) when the GPU build fails, rather than at the end of its timeout.
- ``train`` checks, when it starts and when it ends, that the Space runs on the GPU. Here the
  work itself is a placeholder that sleeps; put the real work there.
- ``downgrade`` goes back to ``cpu-basic`` (or pauses the Space when the Hub refuses that) and,
  as a teardown, runs after a failed ``wait_for_gpu`` or ``train`` too; its own failure fails
  the run, since it means the GPU may still be billing.
- ``publish`` hands on what the work made (here it only reports the work's duration), once the
  GPU is given back, since it needs none. It also keeps a failed ``train`` visible in the run's
  state: Airflow judges a run by its last tasks, and a teardown that can fail the run counts as
  one, which would otherwise hide the failure of ``train``.

Known limit: if ``upgrade`` fails after the Hub took the request (every retry of the call lost
its answer), Airflow skips the teardown. The sleep time above then bounds the cost; a guard that
puts back any Space whose window has ended, independent of this run, would close the gap.

Every constant can be overridden from the environment (``SPACES_WINDOW_*``), which is how the
demo and the tests point this DAG at the local Hub emulator. Parsing this file looks up no
connection and sends no request.
"""

from __future__ import annotations

import logging
import os
import time

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.operators.spaces import (
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
)
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

SPACE_ID = os.environ.get("SPACES_WINDOW_SPACE_ID", "demo/gpu-trainer")
GPU = os.environ.get("SPACES_WINDOW_GPU", "a10g-large")
CONN_ID = os.environ.get("SPACES_WINDOW_CONN_ID", "huggingface_default")
TIME_ZONE = os.environ.get("SPACES_WINDOW_TIME_ZONE", "Europe/Paris")
# How long the placeholder work lasts, in seconds.
WORK_SECONDS = float(os.environ.get("SPACES_WINDOW_WORK_SECONDS", "60"))
POLL_SECONDS = float(os.environ.get("SPACES_WINDOW_POLL_SECONDS", "30"))
GPU_TIMEOUT_SECONDS = float(os.environ.get("SPACES_WINDOW_GPU_TIMEOUT_SECONDS", str(30 * 60)))
DOWNGRADE_TIMEOUT_SECONDS = float(os.environ.get("SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS", str(15 * 60)))
# Idle seconds after which the Space sleeps on the GPU if nothing puts it back.
FAILSAFE_SLEEP_SECONDS = int(os.environ.get("SPACES_WINDOW_FAILSAFE_SLEEP_SECONDS", "3600"))

log = logging.getLogger(__name__)


@task
def train() -> dict[str, float]:
    """Check that the Space runs on the GPU, do the work, and check again at the end."""
    hook = SpacesHook(CONN_ID)
    _require_gpu(hook, "before the work")

    started = time.monotonic()
    # The real work goes here: call the Space's API (its URL is in the XCom of wait_for_gpu),
    # start a training job on it, wait for the job to finish. The placeholder only waits.
    time.sleep(WORK_SECONDS)
    worked = time.monotonic() - started

    _require_gpu(hook, "after the work")
    return {"work_seconds": worked}


@task
def publish(result: dict[str, float]) -> None:
    """Hand on what the work made; the placeholder only reports how long the work lasted."""
    # A real pipeline publishes its result here: push the trained model to the Hub, register it.
    log.info("The work on %s lasted %.1f s", GPU, result["work_seconds"])


def _require_gpu(hook: SpacesHook, when: str) -> None:
    """Fail the work when the Space does not run on the GPU (crashed, asleep, moved)."""
    runtime = hook.get_space_runtime(SPACE_ID)
    if not runtime.arrived(GPU):
        raise RuntimeError(
            f"Space {SPACE_ID} is not running on {GPU} {when}: it is {runtime.stage} on "
            f"{runtime.hardware or 'no hardware'}; see {runtime.url}"
        )


with DAG(
    dag_id="gpu_training_window",
    description="Move a Space to a GPU for the nightly training, then always back to cpu-basic",
    schedule="0 1 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz=pendulum.timezone(TIME_ZONE)),
    catchup=False,
    max_active_runs=1,
    tags=["huggingface", "gpu"],
) as dag:
    upgrade = SpaceHardwareUpgradeOperator(
        task_id="upgrade",
        space_id=SPACE_ID,
        hardware=GPU,
        sleep_time=FAILSAFE_SLEEP_SECONDS,
        wait_for_running=False,
        spaces_conn_id=CONN_ID,
    )
    wait_for_gpu = SpaceStageSensor(
        task_id="wait_for_gpu",
        space_id=SPACE_ID,
        hardware=GPU,
        poke_interval=POLL_SECONDS,
        timeout=GPU_TIMEOUT_SECONDS,
        spaces_conn_id=CONN_ID,
    )
    downgrade = SpaceHardwareDowngradeOperator(
        task_id="downgrade",
        space_id=SPACE_ID,
        poll_interval=POLL_SECONDS,
        timeout=DOWNGRADE_TIMEOUT_SECONDS,
        spaces_conn_id=CONN_ID,
        # A teardown that fails means money may still be running: try again before giving up.
        retries=2,
        retry_delay=pendulum.duration(seconds=POLL_SECONDS),
    )

    trained = train()
    upgrade >> wait_for_gpu >> trained >> downgrade.as_teardown(setups=upgrade, on_failure_fail_dagrun=True)
    downgrade >> publish(trained)
