"""The GPU training window example DAG, run end to end with ``dag.test()`` against the emulated Hub.

The DAG file is loaded as users deploy it, its constants set through the environment: the Space,
a GPU, the default connection (which points at the emulator), a few seconds of work and a short
poll interval. The emulator's clock runs at 60x, so a GPU build of 30 emulated seconds lasts half
a real one; timeouts stay long, so that a run ending early proves it failed fast. The leases the
window takes are real Airflow Variables in the session's database.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_spaces.leases import Lease

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags_examples" / "gpu_training_window.py"
SPACE = "demo/gpu-trainer"
GPU = "a10g-large"
MAX_DURATION = 3600
GRACE = 600
POLL = 0.05
GPU_TIMEOUT = 3600
WINDOW_TASKS = ["take_gpu_lease", "upgrade", "wait_for_gpu", "train", "downgrade", "window_closed", "publish"]


@pytest.fixture
def window_dag(emulated_hub, stored_leases, load_example):
    """Return a function loading the example DAG, with the given seconds of placeholder work."""

    def load(work_seconds: float = 0.5) -> Any:
        settings = {
            "SPACES_WINDOW_SPACE_ID": SPACE,
            "SPACES_WINDOW_GPU": GPU,
            "SPACES_WINDOW_CONN_ID": "huggingface_default",
            "SPACES_WINDOW_WORK_SECONDS": str(work_seconds),
            "SPACES_WINDOW_POLL_SECONDS": str(POLL),
            "SPACES_WINDOW_MAX_DURATION_SECONDS": str(MAX_DURATION),
            "SPACES_WINDOW_GRACE_SECONDS": str(GRACE),
            "SPACES_WINDOW_GPU_TIMEOUT_SECONDS": str(GPU_TIMEOUT),
            "SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS": "60",
        }
        return load_example(DAG_FILE.name, **settings).dag

    return load


def states(result) -> dict[str, str | None]:
    return {task_id: task.state for task_id, task in result.tasks.items()}


def hardware_requests(hub) -> list[str]:
    """Return the flavors asked for, in order."""
    return [
        entry["body"]["flavor"]
        for entry in hub.request_log(SPACE)
        if entry["method"] == "POST" and entry["path"].endswith("/hardware")
    ]


def assert_back_on_cpu_basic_and_not_billed(hub) -> None:
    runtime = hub.runtime(SPACE)
    assert (runtime["stage"], runtime["hardware"]) == (
        "RUNNING",
        {"current": "cpu-basic", "requested": "cpu-basic"},
    )
    assert not hub.ledger(SPACE)["intervals"][-1]["billed"]


def test_the_window_runs_on_the_gpu_ends_back_on_cpu_basic_releases_its_lease_and_reports_its_cost(
    emulated_hub, window_dag, run_dag, stored_leases
):
    # At the emulator's real speed its minutes are Airflow's, so the cost report and the ledger
    # compare; the Space's builds are made short to keep the test fast.
    emulated_hub.set_speed(1)
    emulated_hub.add_space(
        SPACE, hardware="cpu-basic", build_seconds=0.3, start_seconds=0.2, schedule_seconds=0.1
    )
    offset = emulated_hub.now() - time.time()

    result = run_dag(window_dag(work_seconds=1))

    assert result.state == "success"
    assert states(result) == dict.fromkeys(WINDOW_TASKS, "success")
    assert hardware_requests(emulated_hub) == [GPU, "cpu-basic"]
    assert emulated_hub.request_log(SPACE)[1]["body"] == {
        "flavor": GPU,
        "sleepTimeSeconds": MAX_DURATION + GRACE,
    }
    assert result.tasks["wait_for_gpu"].xcom["return_value"]["hardware"] == GPU
    assert result.tasks["train"].xcom["return_value"]["work_seconds"] >= 1
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)

    lease = Lease.from_dict(result.tasks["take_gpu_lease"].xcom["return_value"])
    assert (lease.space_id, lease.hardware, lease.dag_id, lease.run_id) == (
        SPACE,
        GPU,
        "gpu_training_window",
        result.run_id,
    )
    assert lease.expires_at - lease.taken_at == timedelta(seconds=MAX_DURATION + GRACE)
    assert stored_leases.all() == {}
    assert stored_leases.index() == [SPACE]
    downgrade = result.tasks["downgrade"].xcom["return_value"]
    assert downgrade["lease_released"] is True

    # The cost report covers every minute the ledger bills (starting included), at its price.
    cost = downgrade["cost"]
    ledger = emulated_hub.ledger(SPACE)
    billed = [interval for interval in ledger["intervals"] if interval["billed"]]
    held_from = lease.taken_at.timestamp()
    assert (cost["hardware"], cost["price_source"]) == (GPU, "the Hub's catalog")
    # The ledger rounds each interval's dollars to the micro-dollar, which is coarse for seconds
    # of GPU: the price read back from it may be off by that much per billed interval.
    gpu_minutes = ledger["billed_minutes"][GPU]
    slack = 5e-7 * len(billed) / gpu_minutes * 60
    assert cost["usd_per_hour"] == pytest.approx(ledger["usd"] / gpu_minutes * 60, abs=slack + 1e-9)
    assert held_from <= billed[0]["start"] - offset
    assert billed[-1]["end"] - offset <= held_from + cost["minutes"] * 60
    assert cost["usd"] >= ledger["usd"]
    assert "window cost: a10g-large held" in result.tasks["downgrade"].log


def test_a_failing_work_task_still_puts_the_space_back_and_fails_the_run(emulated_hub, window_dag, run_dag):
    # The GPU build lasts five real seconds, so that the sensor is polling when the Space comes up
    # (a task takes up to three seconds to start on Airflow 3.1); the app then crashes five real
    # seconds after it started on the GPU, well inside the ten seconds of work: the sensor has
    # seen the GPU long before, and the check at the end of the work sees the crash, even on a
    # loaded machine.
    emulated_hub.add_space(SPACE, hardware="cpu-basic", build_seconds=300)
    emulated_hub.add_fault("runtime_error", space_id=SPACE, after_seconds=300, message="CUDA out of memory")

    result = run_dag(window_dag(work_seconds=10))

    assert result.state == "failed"
    assert states(result) == {
        "take_gpu_lease": "success",
        "upgrade": "success",
        "wait_for_gpu": "success",
        "train": "failed",
        "downgrade": "success",
        "window_closed": "failed",
        "publish": "upstream_failed",
    }
    assert re.search(
        r"Space demo/gpu-trainer is not running on a10g-large (before|after) the work: it is RUNTIME_ERROR",
        result.tasks["train"].log,
    )
    assert "The GPU window did not do its job: train (failed)" in result.tasks["window_closed"].log
    assert hardware_requests(emulated_hub) == [GPU, "cpu-basic"]
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_a_failing_gpu_build_fails_the_run_at_once_and_the_teardown_runs(emulated_hub, window_dag, run_dag):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("build_error", space_id=SPACE, count=1, message="No matching CUDA image")

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result) == {
        "take_gpu_lease": "success",
        "upgrade": "success",
        "wait_for_gpu": "failed",
        "train": "upstream_failed",
        "downgrade": "success",
        "window_closed": "failed",
        "publish": "upstream_failed",
    }
    assert (
        "Space demo/gpu-trainer is in BUILD_ERROR: No matching CUDA image" in result.tasks["wait_for_gpu"].log
    )
    # The sensor stopped at the first read showing the error: its timeout would have allowed
    # GPU_TIMEOUT / POLL = 72,000 reads.
    log = emulated_hub.request_log(SPACE)
    downgrade_at = next(i for i, entry in enumerate(log) if entry["method"] == "POST" and i > 1)
    reads_before_teardown = [entry for entry in log[:downgrade_at] if entry["path"].endswith("/runtime")]
    assert len(reads_before_teardown) < 60
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_an_upgrade_that_fails_after_the_hub_took_it_still_puts_the_space_back(
    emulated_hub, window_dag, run_dag, no_client_retries, stored_leases
):
    # The Hub switches to the GPU and the answer is lost: the upgrade fails with the GPU coming.
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("drop", space_id=SPACE, method="POST", after_acting=True, count=1)

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result) == {
        "take_gpu_lease": "success",
        "upgrade": "failed",
        "wait_for_gpu": "upstream_failed",
        "train": "upstream_failed",
        "downgrade": "success",
        "window_closed": "failed",
        "publish": "upstream_failed",
    }
    assert hardware_requests(emulated_hub) == [GPU, "cpu-basic"]
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)
    assert stored_leases.all() == {}


def test_a_space_already_on_the_gpu_gets_no_hardware_request_before_the_work(
    emulated_hub, window_dag, run_dag
):
    emulated_hub.add_space(SPACE, hardware=GPU, sleep_time=MAX_DURATION + GRACE)

    result = run_dag(window_dag())

    assert result.state == "success"
    assert hardware_requests(emulated_hub) == ["cpu-basic"]  # only the teardown's
    writes_before_teardown = [entry for entry in emulated_hub.request_log(SPACE) if entry["method"] != "GET"][
        :-1
    ]
    assert writes_before_teardown == []
    assert "Space demo/gpu-trainer already runs on a10g-large; no hardware request sent" in (
        result.tasks["upgrade"].log
    )
    assert_back_on_cpu_basic_and_not_billed(emulated_hub)


def test_a_teardown_that_cannot_stop_the_bill_fails_the_run_and_hands_the_space_to_the_guard(
    emulated_hub, window_dag, run_dag, stored_leases
):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    emulated_hub.add_fault("refuse", space_id=SPACE, action="hardware", flavor="cpu-basic", status=403)
    emulated_hub.add_fault("refuse", space_id=SPACE, action="pause", status=403)

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result) == {
        "take_gpu_lease": "success",
        "upgrade": "success",
        "wait_for_gpu": "success",
        "train": "success",
        "downgrade": "failed",
        "window_closed": "failed",
        "publish": "upstream_failed",
    }
    downgrade = result.tasks["downgrade"]
    assert downgrade.try_number == 3  # the teardown's two retries were used
    assert "Space demo/gpu-trainer may still cost money (RUNNING on a10g-large)" in downgrade.log
    assert "a10g-large costs $1.50 per hour" in downgrade.log
    assert "Stop it by hand now: pause it, or move it to cpu-basic" in downgrade.log
    lease = Lease.from_dict(stored_leases.all()[SPACE])
    assert lease.expired(datetime.now(timezone.utc))


def test_a_window_does_not_take_a_space_another_run_holds(emulated_hub, window_dag, run_dag, stored_leases):
    emulated_hub.add_space(SPACE, hardware="cpu-basic")
    theirs = Lease.take(
        SPACE,
        GPU,
        dag_id="someone_elses_window",
        run_id="manual_1",
        task_id="take_gpu_lease",
        max_duration=timedelta(hours=1),
        grace=timedelta(minutes=15),
    )
    stored_leases.seed(theirs)

    result = run_dag(window_dag())

    assert result.state == "failed"
    assert states(result)["take_gpu_lease"] == "failed"
    assert states(result)["downgrade"] == "upstream_failed"
    assert "is leased to DAG someone_elses_window, run manual_1" in result.tasks["take_gpu_lease"].log
    assert [entry for entry in emulated_hub.request_log(SPACE) if entry["method"] != "GET"] == []
    assert stored_leases.all() == {SPACE: theirs.to_dict()}
