"""Rent a GPU for a nightly training window, and always give it back.

Every night at 01:00 (in the time zone below), this DAG moves a Hugging Face Space to a GPU,
waits until the Space really runs there, does the work, and puts the Space back on the free
``cpu-basic`` hardware, whether the work succeeded or not. ``space_gpu_window`` wires it: the
tasks created inside its ``with`` block are the work, and it adds the rest around them::

    take_gpu_lease (setup) >> upgrade (setup) >> wait_for_gpu >> train >> downgrade (teardown)
                                                        train, downgrade >> window_closed (teardown)
                                                        train, downgrade >> publish

- ``take_gpu_lease`` records, in an Airflow Variable, that this run holds the GPU until the start
  plus ``MAX_DURATION`` plus a grace. Should the run die (worker or scheduler killed, Airflow down
  as the window ends), the guard DAG (``space_guard.py``) puts the Space back once that passes.
- ``upgrade`` only asks for the GPU, with a failsafe sleep time of the same length: should
  everything else fail, the idle Space falls asleep and stops costing money.
- ``wait_for_gpu`` waits until the Space runs on the GPU, and fails at once (with the Hub's
  words) when the GPU build fails, rather than at the end of its timeout.
- ``train`` checks, when it starts and when it ends, that the Space runs on the GPU. Here the
  work itself is a placeholder that sleeps; put the real work there.
- ``downgrade`` goes back to ``cpu-basic`` (or pauses the Space when the Hub refuses that),
  trying again through passing Hub errors, releases the lease and reports what the window cost.
  As a teardown of the lease it runs after a failed upgrade, wait or work too; its own failure
  fails the run, since it means the GPU may still be billing.
- ``window_closed`` makes the run's state tell the truth: it fails when any task of the window
  failed, also in a run a person marked failed (whose teardowns still run and decide its state).
- ``publish`` hands on what the work made, once the GPU is given back (after ``downgrade``).

Every constant can be overridden from the environment (``SPACES_WINDOW_*``), which is how the
demo, the tests and the fault matrix point this DAG at the local Hub emulator. Parsing this file
looks up no connection and sends no request.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.window import space_gpu_window

SPACE_ID = os.environ.get("SPACES_WINDOW_SPACE_ID", "demo/gpu-trainer")
GPU = os.environ.get("SPACES_WINDOW_GPU", "a10g-large")
CONN_ID = os.environ.get("SPACES_WINDOW_CONN_ID", "huggingface_default")
TIME_ZONE = os.environ.get("SPACES_WINDOW_TIME_ZONE", "Europe/Paris")
# How long the placeholder work lasts, in seconds; a manual run can ask for another length.
WORK_SECONDS = float(os.environ.get("SPACES_WINDOW_WORK_SECONDS", "60"))
# The longest the window may hold the GPU (build, wait and work), and the guard's grace after it.
MAX_DURATION = timedelta(seconds=float(os.environ.get("SPACES_WINDOW_MAX_DURATION_SECONDS", str(2 * 3600))))
GRACE = timedelta(seconds=float(os.environ.get("SPACES_WINDOW_GRACE_SECONDS", str(15 * 60))))
# Idle seconds after which the Space sleeps on the GPU should nothing put it back; unset: the
# lease's length (MAX_DURATION + GRACE).
FAILSAFE_SLEEP = os.environ.get("SPACES_WINDOW_FAILSAFE_SLEEP_SECONDS")
POLL_SECONDS = float(os.environ.get("SPACES_WINDOW_POLL_SECONDS", "30"))
GPU_TIMEOUT_SECONDS = float(os.environ.get("SPACES_WINDOW_GPU_TIMEOUT_SECONDS", str(30 * 60)))
DOWNGRADE_TIMEOUT_SECONDS = float(os.environ.get("SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS", str(15 * 60)))

log = logging.getLogger(__name__)


@task
def train() -> dict[str, float]:
    """Check that the Space runs on the GPU, do the work, and check again at the end."""
    hook = SpacesHook(CONN_ID)
    _require_gpu(hook, "before the work")

    started = time.monotonic()
    # The real work goes here: call the Space's API (its URL is in the XCom of wait_for_gpu),
    # start a training job on it, wait for the job to finish. The placeholder only waits.
    time.sleep(float(get_current_context()["params"]["work_seconds"]))
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
    params={
        "work_seconds": Param(WORK_SECONDS, type="number", minimum=0, description="Placeholder work, in s")
    },
) as dag:
    with space_gpu_window(
        SPACE_ID,
        hardware=GPU,
        max_duration=MAX_DURATION,
        grace=GRACE,
        failsafe_sleep_time=int(FAILSAFE_SLEEP) if FAILSAFE_SLEEP else None,
        poll_interval=POLL_SECONDS,
        gpu_timeout=GPU_TIMEOUT_SECONDS,
        downgrade_timeout=DOWNGRADE_TIMEOUT_SECONDS,
        spaces_conn_id=CONN_ID,
    ) as window:
        trained = train()

    window.downgrade >> publish(trained)
