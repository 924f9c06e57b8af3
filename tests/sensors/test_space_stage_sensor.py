"""SpaceStageSensor against the emulated Hub: arrival on the flavor, one log line per change,
failing at once on a dead end with the Hub's words, and timeout and soft_fail as Airflow has them."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from airflow.sdk import DAG

from airflow_provider_spaces._compat import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

SPACE = "demo/app"
GPU = "a10g-large"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def sensor(**options) -> SpaceStageSensor:
    return SpaceStageSensor(task_id="wait", **{"space_id": SPACE, "poke_interval": 0.05, **options})


def runtime_reads(hub) -> int:
    return sum(1 for entry in hub.request_log(SPACE) if entry["path"].endswith("/runtime"))


def test_sensor_returns_the_runtime_once_the_space_runs_on_the_gpu(emulated_hub, airflow_logs):
    # The first sensor of a fresh test process loads the Hub client and, on Airflow 3.1, Airflow's
    # models for the connection lookup: seconds that would let the half-second build end unseen. A
    # first wait on another Space pays for them, and the build lasts two real seconds.
    emulated_hub.add_space("demo/warm-up", hardware=GPU)
    sensor(space_id="demo/warm-up").execute({})
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING", build_seconds=120)

    result = sensor(hardware=GPU).execute({})

    assert (result["stage"], result["hardware"], result["url"]) == (
        "RUNNING",
        GPU,
        f"{emulated_hub.url}/spaces/{SPACE}",
    )
    progress = [line for line in airflow_logs.text.splitlines() if f"Space {SPACE} is" in line]
    assert [line.split(" is ", 1)[1].split(" (")[0] for line in progress] == [
        "BUILDING, a10g-large requested",
        "APP_STARTING on a10g-large",
        "RUNNING on a10g-large",
    ]
    assert runtime_reads(emulated_hub) > len(progress)


def test_sensor_waits_for_any_of_its_target_stages(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic", stage="PAUSED")

    result = sensor(target_stages=["PAUSED", "SLEEPING"]).execute({})

    assert result["stage"] == "PAUSED"


def test_sensor_fails_at_once_on_a_build_error_with_the_hubs_words(emulated_hub):
    # Scripted first, the fault decides how the seeded build ends.
    emulated_hub.add_fault("build_error", space_id=SPACE, message="No space left on device")
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")

    with pytest.raises(
        AirflowFailException, match="Space demo/app is in BUILD_ERROR: No space left on device"
    ):
        sensor(hardware=GPU, timeout=3600).execute({})

    assert runtime_reads(emulated_hub) < 40


def test_sensor_fails_at_once_on_a_paused_space(emulated_hub):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="PAUSED")

    with pytest.raises(AirflowFailException, match="is PAUSED and will not become RUNNING by itself"):
        sensor().execute({})

    assert runtime_reads(emulated_hub) == 1


def test_sensor_fails_at_once_when_another_flavor_is_requested(emulated_hub):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")

    with pytest.raises(
        AirflowFailException, match="so it will not move to a10g-large by itself; request a10g-large"
    ):
        sensor(hardware=GPU).execute({})


def test_soft_fail_skips_instead_of_failing_on_a_dead_end(emulated_hub):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="PAUSED")

    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).execute({})


def test_soft_fail_logs_the_hubs_message_of_the_failure_it_skips(emulated_hub, capsys):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILD_ERROR", error_message="boom: no space left")

    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).execute({})

    assert (
        "Skipping the task (soft_fail) instead of failing: Space demo/app is in BUILD_ERROR: boom"
        in capsys.readouterr().out
    )


def test_sensor_times_out_naming_the_space_its_last_stage_and_the_wait(emulated_hub):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")
    emulated_hub.set_speed(0.001)  # the build will not end during this test

    with pytest.raises(
        AirflowSensorTimeout,
        match=r"Space demo/app did not become RUNNING on a10g-large within 0 s: waited 0 s, last seen "
        r"BUILDING, a10g-large requested\. See http",
    ):
        sensor(hardware=GPU, timeout=0.2).execute({})


def test_soft_fail_skips_at_the_timeout(emulated_hub):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")
    emulated_hub.set_speed(0.001)

    with pytest.raises(AirflowSkipException):
        sensor(hardware=GPU, timeout=0.2, soft_fail=True).execute({})


def test_a_final_hub_error_fails_the_sensor_without_retries(emulated_hub):
    with pytest.raises(AirflowFailException, match=r"HTTP 404 Not Found \(RepoNotFound\)"):
        SpaceStageSensor(task_id="wait", space_id="nobody/nothing", poke_interval=0.05).execute({})


def finish_the_build_after_the_first_read(hub) -> threading.Thread:
    """Hold the emulated clock until the sensor's first read, then move it past the build."""
    hub.set_speed(1e-9)

    def watch() -> None:
        deadline = time.monotonic() + 60
        while runtime_reads(hub) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.advance(60)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_reschedule_mode_waits_across_pokes_in_a_dag_run(emulated_hub, run_dag):
    emulated_hub.add_space(SPACE, hardware=GPU, stage="BUILDING")
    watcher = finish_the_build_after_the_first_read(emulated_hub)
    with DAG("sensor_reschedule", schedule=None, start_date=START) as dag:
        SpaceStageSensor(task_id="wait", space_id=SPACE, hardware=GPU, mode="reschedule", poke_interval=1)

    result = run_dag(dag)
    watcher.join()

    wait = result.tasks["wait"]
    assert (result.state, wait.state) == ("success", "success")
    assert wait.xcom["return_value"]["hardware"] == GPU
    assert runtime_reads(emulated_hub) >= 2
    assert f"Space {SPACE} is BUILDING, {GPU} requested" in wait.log
    assert wait.xcom["_link_SpaceLink"] == f"{emulated_hub.url}/spaces/{SPACE}"
    assert wait.xcom["_link_SpaceSettingsLink"] == f"{emulated_hub.url}/spaces/{SPACE}/settings"
