"""Run the GPU training window under each fault it must survive, and read the bill from the Hub's ledger.

``python3 dev.py run python scripts/fault_matrix.py`` starts the Hub emulator on 127.0.0.1 in this
process and a throw-away Airflow (``scripts/airflow_stack.py``: api-server, scheduler with the
LocalExecutor, dag-processor and triggerer as real processes, on SQLite under ``.fault_matrix/``)
with ``dags_examples/gpu_training_window.py`` and ``dags_examples/space_guard.py``. It then runs the
window once per scenario, one after the other on one Space, and for each reads the emulator's
ledger:

- **GPU minutes billed after the deadline**: the deadline is the moment from which the run is no
  longer responsible for the GPU and only the guard (or the failsafe sleep time) can stop it: the
  end of the run, or the lease's expiry when that comes first or when Airflow is down. The lease's
  grace, between the window's planned end and the expiry, still belongs to the run; what it billed
  is shown beside. Goal: no more than one guard interval.
- **whether the run's final state tells the truth**: failed when the work did not get done, success
  only when it did and the money stopped.
- for the run without faults, **billed GPU minutes per minute of work**. Goal: at most 1.1.

It prints a table and exits with 1 when a goal is missed (or a scenario could not be run). The
whole matrix takes about 15 minutes on a 2-core machine. Nothing here talks to anything but the
emulator and the Airflow it starts, both on 127.0.0.1.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_stack import AirflowStack

from airflow_provider_spaces.emulator import HubEmulator

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / ".fault_matrix"
WINDOW_DAG = "gpu_training_window"
GUARD_DAG = "space_guard"
SPACE_ID = "demo/gpu-trainer"
GPU = "a10g-large"
FREE = "cpu-basic"
CONN_ID = "spaces_fault_matrix"

# Emulated seconds per real second. Airflow runs in real time, the Hub on this clock, so each real
# second Airflow spends between two tasks bills SPEED emulated seconds. The share of that latency
# in the ratio is latency / real work, whatever SPEED is: with two real minutes of work it is what
# a real run with two minutes of work would pay, never less. SPEED then only sets how long the
# work is on the Hub's clock (an hour), which keeps the app's start-up, billed as the Hub bills
# it, at its real weight in a real window.
SPEED = 30.0
# On the Hub's clock: a GPU image build of two minutes, half a minute for the app to start.
BUILD_SECONDS = 120.0
START_SECONDS = 30.0
# In real seconds, as Airflow sees them.
WORK_SECONDS = 120.0  # the run without faults: an hour of work on the Hub's clock
SHORT_WORK_SECONDS = 20.0  # the runs whose work is cut short anyway
POLL_SECONDS = 1.0  # 30 s on the Hub's clock, the DAG's default
MAX_DURATION_SECONDS = 160.0
GRACE_SECONDS = 10.0
GUARD_INTERVAL_SECONDS = 10.0  # 5 minutes on the Hub's clock, the guard's default
GPU_TIMEOUT_SECONDS = 20.0
DOWNGRADE_TIMEOUT_SECONDS = 60.0
HEARTBEAT_TIMEOUT_SECONDS = 20
RUN_TIMEOUT = 240.0
# The whole matrix stops by itself after this many real seconds; what is left is reported as not run.
MATRIX_BUDGET = 25 * 60.0

LEASE_SECONDS = MAX_DURATION_SECONDS + GRACE_SECONDS
GUARD_INTERVAL_MINUTES = GUARD_INTERVAL_SECONDS * SPEED / 60.0
# The upgrade's failsafe sleep time is a Hub setting, on the Hub's clock: the lease's length there.
FAILSAFE_SLEEP = round(LEASE_SECONDS * SPEED)

log = logging.getLogger("fault_matrix")


def say(text: str = "") -> None:
    """Print one line at once."""
    print(text, flush=True)


@dataclass
class Row:
    """One scenario's outcome."""

    name: str
    expected_state: str | None
    run_state: str = "-"
    billed_after: float | None = None
    deadline: str = ""
    stopped_by: str = ""
    gpu_minutes: float | None = None
    ratio: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def truthful(self) -> bool | None:
        """Tell whether the run ended as it should; None when no final state is expected."""
        if self.expected_state is None:
            return None
        return self.run_state == self.expected_state

    @property
    def goals_met(self) -> bool:
        """Tell whether the scenario met its goals: billing, truth and, for the clean run, ratio."""
        if self.error is not None or self.billed_after is None:
            return False
        if self.billed_after > GUARD_INTERVAL_MINUTES + 1e-6:
            return False
        if self.truthful is False:
            return False
        return self.ratio is None or self.ratio <= 1.1


class Matrix:
    """The emulated Hub, the Airflow stack, and the helpers the scenarios share."""

    def __init__(self, hub: HubEmulator, stack: AirflowStack) -> None:
        self.hub = hub
        self.stack = stack

    # -- the Hub -------------------------------------------------------------------------------

    def fresh_space(self) -> None:
        """Forget the last scenario's Space, faults and log; create the Space on cpu-basic again."""
        self.hub.reset()
        self.hub.add_space(SPACE_ID, hardware=FREE, build_seconds=BUILD_SECONDS, start_seconds=START_SECONDS)

    def on_hub_clock(self, moment: datetime | float) -> float:
        """Return the Hub's time at a moment of Airflow's (wall) clock.

        From the logged request nearest in time, which carries both clocks: the Hub's runs on a
        monotonic clock, and this machine's wall clock was seen to jump by tens of seconds, so one
        reading of both at the start would place later moments wrongly.
        """
        real = moment.timestamp() if isinstance(moment, datetime) else moment
        logged = self.hub.request_log()
        if not logged:
            return self.hub.now() + (real - time.time()) * SPEED
        nearest = min(logged, key=lambda entry: abs(entry["real_time"] - real))
        return float(nearest["emulated_time"]) + (real - float(nearest["real_time"])) * SPEED

    def lease_on_hub_clock(self, run_id: str) -> tuple[float, float]:
        """Return the window's planned end and the lease's expiry, on the Hub's clock."""
        taken, expires = self.lease_times(run_id)
        start = self.on_hub_clock(taken)
        length = (expires - taken).total_seconds()
        return start + (length - GRACE_SECONDS) * SPEED, start + length * SPEED

    def billed_gpu_minutes(self, since: float | None = None) -> float:
        """Return the GPU minutes billed, from ``since`` (the Hub's time) on when given."""
        ledger = self.hub.ledger(SPACE_ID)
        total = 0.0
        for interval in ledger["intervals"]:
            if not interval["billed"] or interval["flavor"] == FREE:
                continue
            start = interval["start"] if since is None else max(interval["start"], since)
            end = interval["end"] if interval["end"] is not None else ledger["as_of"]
            total += max(0.0, end - start)
        return total / 60.0

    def stopped_by(self) -> str:
        """Say what ended the last billed stretch on the GPU, and when on the Hub's clock."""
        intervals = self.hub.ledger(SPACE_ID)["intervals"]
        billed = [i for i, interval in enumerate(intervals) if interval["billed"]]
        if not billed:
            return "never billed"
        last = billed[-1]
        if intervals[last]["end"] is None:
            return "STILL BILLING"
        after = intervals[last + 1]["stage"]
        names = {"BUILDING": "downgrade", "PAUSED": "pause", "SLEEPING": "failsafe sleep"}
        return names.get(after, "app crash" if after.endswith("_ERROR") else after)

    def cost_report(self, cost: dict[str, Any]) -> str:
        """Put the window's own cost report (Airflow's clock) beside the ledger (the Hub's clock)."""
        hub_usd = cost["usd"] * SPEED if cost.get("usd") is not None else None
        shown = "unknown" if hub_usd is None else f"${hub_usd:.2f}"
        return (
            f"window's cost report: {cost['hardware']} at ${cost['usd_per_hour']}/h ({cost['price_source']}), "
            f"{cost['minutes']:.2f} real min held since the lease, {shown} on the Hub's clock; the ledger "
            f"billed ${self.hub.ledger(SPACE_ID)['usd']:.2f} (the report counts the free build too)"
        )

    def final_state(self) -> str:
        runtime = self.hub.runtime(SPACE_ID)
        hardware = runtime.get("hardware") or {}
        return f"{runtime['stage']} on {hardware.get('current')} ({hardware.get('requested')} requested)"

    # -- Airflow -------------------------------------------------------------------------------

    def trigger(self, work_seconds: float) -> str:
        return self.stack.trigger(WINDOW_DAG, {"work_seconds": work_seconds})

    def wait_until_working(self, run_id: str, seconds_in: float = 5.0) -> None:
        """Wait until ``train`` runs, then ``seconds_in`` more: past its first check, mid-work."""
        self.stack.wait_for_task_state(WINDOW_DAG, run_id, "train", {"running"}, timeout=RUN_TIMEOUT)
        time.sleep(seconds_in)

    def finish(self, run_id: str) -> tuple[str, datetime]:
        """Wait for the run's end; return its state and when it ended (Airflow's clock)."""
        state = self.stack.wait_for_run(WINDOW_DAG, run_id, timeout=RUN_TIMEOUT)
        run = self.stack.api("GET", f"/dags/{WINDOW_DAG}/dagRuns/{run_id}")
        return state, datetime.fromisoformat(run["end_date"])

    def xcom(self, run_id: str, task_id: str) -> Any:
        rows = self.stack.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            (WINDOW_DAG, run_id, task_id),
        )
        if not rows:
            return None
        value = rows[0][0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def lease_times(self, run_id: str) -> tuple[datetime, datetime]:
        """Return when the run's lease was taken and when it expires (Airflow's clock)."""
        lease = self.xcom(run_id, "take_gpu_lease")
        if lease is None:
            raise RuntimeError("the run took no lease")
        return datetime.fromisoformat(lease["taken_at"]), datetime.fromisoformat(lease["expires_at"])

    def set_guard_paused(self, paused: bool) -> None:
        self.stack.api("PATCH", f"/dags/{GUARD_DAG}", {"is_paused": paused})

    def task_states(self, run_id: str) -> dict[str, str]:
        return {task: str(ti["state"]) for task, ti in self.stack.task_instances(WINDOW_DAG, run_id).items()}

    # -- scoring -------------------------------------------------------------------------------

    def close_run(self, row: Row, run_id: str) -> None:
        """Wait for a run the stack can finish, and score it from its end or its lease's expiry."""
        row.run_state, ended = self.finish(run_id)
        _, expires = self.lease_on_hub_clock(run_id)
        end = self.on_hub_clock(ended)
        row.deadline = "run end" if end <= expires else "lease expiry"
        row.billed_after = self.billed_gpu_minutes(since=min(end, expires))
        row.gpu_minutes = self.billed_gpu_minutes()
        row.stopped_by = self.stopped_by()
        states = self.task_states(run_id)
        row.notes.append("tasks: " + ", ".join(f"{task} {state}" for task, state in states.items()))
        cost = (self.xcom(run_id, "downgrade") or {}).get("cost")
        if cost:
            row.notes.append(self.cost_report(cost))
        row.notes.append(f"Space at the end: {self.final_state()}")


# -- the scenarios ---------------------------------------------------------------------------------


def clean_run(matrix: Matrix, row: Row) -> None:
    """The nightly run the scheduler starts by itself, with an hour of work on the Hub's clock."""
    run_id = first_scheduled_run(matrix.stack)
    matrix.close_run(row, run_id)
    worked = matrix.xcom(run_id, "train")
    if worked is None:
        raise RuntimeError("train left no result")
    work_minutes = float(worked["work_seconds"]) * SPEED / 60.0
    row.ratio = (row.gpu_minutes or 0.0) / work_minutes
    ledger_usd = matrix.hub.ledger(SPACE_ID)["usd"]
    row.notes.append(
        f"{row.gpu_minutes:.2f} GPU min billed for {work_minutes:.2f} min of work; ledger ${ledger_usd:.2f}"
    )


def first_scheduled_run(stack: AirflowStack, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = stack.api("GET", f"/dags/{WINDOW_DAG}/dagRuns").get("dag_runs", [])
        if runs:
            return str(runs[0]["dag_run_id"])
        time.sleep(1)
    raise TimeoutError("the scheduler started no run of the window")


def work_fails(matrix: Matrix, row: Row) -> None:
    """The app crashes on the GPU in the middle of the work: train fails."""
    matrix.hub.add_fault("runtime_error", space_id=SPACE_ID, count=1, after_seconds=10 * SPEED)
    matrix.close_run(row, matrix.trigger(SHORT_WORK_SECONDS))


def marked_failed(matrix: Matrix, row: Row) -> None:
    """A person marks the run failed in the middle of the work."""
    run_id = matrix.trigger(60.0)
    matrix.wait_until_working(run_id)
    matrix.stack.api("PATCH", f"/dags/{WINDOW_DAG}/dagRuns/{run_id}", {"state": "failed"})
    matrix.close_run(row, run_id)


def worker_killed(matrix: Matrix, row: Row) -> None:
    """The process running train gets SIGKILL in the middle of the work."""
    run_id = matrix.trigger(60.0)
    matrix.wait_until_working(run_id)
    pid = matrix.stack.task_pid(WINDOW_DAG, run_id, "train")
    if pid is None:
        raise RuntimeError("train has no process id")
    _kill_pid(pid)
    row.notes.append(f"train's process {pid} killed with SIGKILL")
    matrix.close_run(row, run_id)


def setup_fails_after_accepted(matrix: Matrix, row: Row) -> None:
    """The Hub switches to the GPU but every answer to the upgrade is lost: the upgrade fails."""
    # As many lost answers as the client has attempts; the downgrade's request comes after them.
    matrix.hub.add_fault("drop", space_id=SPACE_ID, method="POST", after_acting=True, count=5)
    matrix.close_run(row, matrix.trigger(SHORT_WORK_SECONDS))


def teardown_bursts(matrix: Matrix, row: Row) -> None:
    """The teardown's requests meet a burst of 503s, then of 429s, beyond the client's own retries."""
    run_id = matrix.trigger(SHORT_WORK_SECONDS)
    matrix.wait_until_working(run_id, seconds_in=1.0)
    # Only POSTs: the work's own reads pass, the downgrade and any pause meet the bursts.
    matrix.hub.add_fault("server_error", space_id=SPACE_ID, method="POST", count=8, status=503)
    matrix.hub.add_fault("rate_limit", space_id=SPACE_ID, method="POST", count=6, retry_after=1)
    matrix.close_run(row, run_id)
    failed = [
        e for e in matrix.hub.request_log(SPACE_ID) if e["method"] == "POST" and e["status"] in (429, 503)
    ]
    row.notes.append(f"{len(failed)} POSTs answered 503 or 429 during the teardown")


def quota_refusal(matrix: Matrix, row: Row) -> None:
    """The Hub refuses the move back to cpu-basic (403, a quota): the teardown pauses the Space."""
    matrix.hub.add_fault(
        "refuse",
        space_id=SPACE_ID,
        action="hardware",
        flavor=FREE,
        status=403,
        message="You have reached your hardware change quota (emulated)",
    )
    matrix.close_run(row, matrix.trigger(SHORT_WORK_SECONDS))


def build_never_settles(stage: str) -> Callable[[Matrix, Row], None]:
    """Return the scenario of a GPU build stuck in ``stage``: the wait times out."""

    def scenario(matrix: Matrix, row: Row) -> None:
        matrix.hub.add_fault("stuck", space_id=SPACE_ID, count=1, stage=stage)
        matrix.close_run(row, matrix.trigger(SHORT_WORK_SECONDS))

    return scenario


def airflow_back_late(matrix: Matrix, row: Row) -> None:
    """All of Airflow is killed mid-work and comes back once the window should have ended."""
    matrix.set_guard_paused(False)
    run_id = matrix.trigger(WORK_SECONDS)
    matrix.wait_until_working(run_id)
    planned_end, deadline = matrix.lease_on_hub_clock(run_id)
    kill_airflow(matrix.stack, run_id)

    # Down until the window's planned end (the lease's start plus its maximum duration), timed on
    # the Hub's clock, which does not jump.
    time.sleep(max(0.0, (planned_end - matrix.hub.now()) / SPEED))
    matrix.stack.start()
    matrix.stack.wait_ready()
    back = matrix.hub.now()
    row.notes.append(
        f"Airflow back {(back - planned_end) / SPEED:.0f} real s after the window's planned end "
        f"({(back - deadline) / SPEED:+.0f} s from the lease's expiry)"
    )
    row.run_state, _ = matrix.finish(run_id)
    wait_until_not_billing(matrix, timeout=60)
    matrix.set_guard_paused(True)

    row.deadline = "lease expiry"
    row.billed_after = matrix.billed_gpu_minutes(since=deadline)
    row.gpu_minutes = matrix.billed_gpu_minutes()
    row.notes.append(grace_note(matrix, planned_end))
    row.stopped_by = matrix.stopped_by()
    row.notes.append("tasks: " + ", ".join(f"{t} {s}" for t, s in matrix.task_states(run_id).items()))
    row.notes.extend(guard_reports(matrix.stack))
    row.notes.append(f"Space at the end: {matrix.final_state()}")


def airflow_gone(matrix: Matrix, row: Row) -> None:
    """All of Airflow is killed mid-work for good: only the failsafe sleep time can stop the bill."""
    run_id = matrix.trigger(WORK_SECONDS)
    matrix.wait_until_working(run_id)
    window_end, deadline = matrix.lease_on_hub_clock(run_id)
    kill_airflow(matrix.stack, run_id)

    # Nobody is left to act in real time: move the Hub's clock two hours past the lease's expiry.
    matrix.hub.advance(max(0.0, deadline - matrix.hub.now()) + 2 * 3600)
    row.run_state = "running (Airflow gone)"
    row.deadline = "lease expiry"
    row.billed_after = matrix.billed_gpu_minutes(since=deadline)
    row.gpu_minutes = matrix.billed_gpu_minutes()
    row.stopped_by = matrix.stopped_by()
    row.notes.append(grace_note(matrix, window_end))
    intervals = matrix.hub.ledger(SPACE_ID)["intervals"]
    asleep = next((i["start"] for i in intervals if i["stage"] == "SLEEPING"), None)
    if asleep is not None:
        row.notes.append(
            f"asleep {(asleep - deadline) / 60:+.1f} min from the lease's expiry (Hub's clock): the "
            f"failsafe sleep time ({FAILSAFE_SLEEP} s) counts from the GPU's start, so after the expiry "
            "by about the build and start"
        )
    row.notes.append(f"Space at the end: {matrix.final_state()}")


def grace_note(matrix: Matrix, window_end: float) -> str:
    """Say what was billed from the window's planned end on, the lease's grace included."""
    billed = matrix.billed_gpu_minutes(since=window_end)
    return (
        f"{billed:.2f} GPU min billed after the window's planned end, of which up to "
        f"{GRACE_SECONDS * SPEED / 60:.0f} in the lease's grace, when the run is still the holder"
    )


def kill_airflow(stack: AirflowStack, run_id: str) -> None:
    """SIGKILL every component, and the task's process should it have outlived them."""
    pid = stack.task_pid(WINDOW_DAG, run_id, "train")
    stack.kill()
    if pid is not None:
        _kill_pid(pid)


def _kill_pid(pid: int) -> None:
    # The process is one this script started, through the stack; it may be gone already.
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until_not_billing(matrix: Matrix, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while matrix.stopped_by() == "STILL BILLING" and time.monotonic() < deadline:
        time.sleep(1)


def guard_reports(stack: AirflowStack) -> list[str]:
    """Return what the guard's runs did about the Space (from their results), acting runs only."""
    rows = stack.query(
        "SELECT run_id, value FROM xcom WHERE dag_id = ? AND task_id = 'guard' AND key = 'return_value' "
        "ORDER BY timestamp",
        (GUARD_DAG,),
    )
    lines = []
    for run_id, raw in rows:
        value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        for finding in value.get("findings", []) if isinstance(value, dict) else []:
            if finding.get("space_id") == SPACE_ID and finding.get("action") not in (None, "none"):
                lines.append(
                    f"guard run {run_id}: {finding['verdict']}, {finding['action']} -> {finding.get('outcome')}"
                    f"; {finding.get('hardware')} at ${finding.get('usd_per_hour')}/h, "
                    f"${finding.get('usd_since_lease')} since the lease (real minutes)"
                )
    return lines or ["the guard did nothing about the Space"]


SCENARIOS: list[tuple[str, str | None, Callable[[Matrix, Row], None]]] = [
    ("no fault (nightly run)", "success", clean_run),
    ("work task fails", "failed", work_fails),
    ("run marked failed mid-work", "failed", marked_failed),
    ("setup fails after Hub accepted", "failed", setup_fails_after_accepted),
    ("5xx + 429 bursts in teardown", "success", teardown_bursts),
    ("quota refusal of downgrade", "success", quota_refusal),
    ("GPU build never settles", "failed", build_never_settles("BUILDING")),
    ("GPU app never starts", "failed", build_never_settles("APP_STARTING")),
    ("worker SIGKILL mid-work", "failed", worker_killed),
    ("Airflow killed, back late", "failed", airflow_back_late),
    # Last: it leaves no Airflow behind.
    ("Airflow killed for good", None, airflow_gone),
]


# -- setting up ------------------------------------------------------------------------------------


def migrated_database(version: str) -> Path:
    """Return a migrated Airflow database for this release, made once and kept for the next runs."""
    template = WORK_DIR / f"airflow-{version}.db"
    if template.exists():
        return template
    say(f"First run: migrating an Airflow {version} database (takes a minute) ...")
    home = WORK_DIR / "migrate"
    shutil.rmtree(home, ignore_errors=True)
    AirflowStack(home=home, dags_folder=home, env={"AIRFLOW_CONFIG": str(home / "airflow.cfg")}).migrate()
    shutil.copy(home / "airflow.db", template)
    shutil.rmtree(home, ignore_errors=True)
    return template


def make_stack(hub: HubEmulator, version: str) -> AirflowStack:
    home, dags = WORK_DIR / "home", WORK_DIR / "dags"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(dags, ignore_errors=True)
    home.mkdir(parents=True)
    dags.mkdir()
    for name in ("gpu_training_window.py", "space_guard.py"):
        shutil.copy(ROOT / "dags_examples" / name, dags)
    shutil.copy(migrated_database(version), home / "airflow.db")
    connection = {"conn_type": "huggingface_spaces", "host": hub.url, "password": hub.write_token}
    env = {
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
        "SPACES_WINDOW_SPACE_ID": SPACE_ID,
        "SPACES_WINDOW_GPU": GPU,
        "SPACES_WINDOW_CONN_ID": CONN_ID,
        "SPACES_WINDOW_WORK_SECONDS": str(WORK_SECONDS),
        "SPACES_WINDOW_POLL_SECONDS": str(POLL_SECONDS),
        "SPACES_WINDOW_MAX_DURATION_SECONDS": str(MAX_DURATION_SECONDS),
        "SPACES_WINDOW_GRACE_SECONDS": str(GRACE_SECONDS),
        "SPACES_WINDOW_FAILSAFE_SLEEP_SECONDS": str(FAILSAFE_SLEEP),
        "SPACES_WINDOW_GPU_TIMEOUT_SECONDS": str(GPU_TIMEOUT_SECONDS),
        "SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS": str(DOWNGRADE_TIMEOUT_SECONDS),
        "SPACES_GUARD_SPACES": SPACE_ID,
        "SPACES_GUARD_CONN_ID": CONN_ID,
        "SPACES_GUARD_INTERVAL_SECONDS": str(GUARD_INTERVAL_SECONDS),
        # A task whose process died is failed, and its teardown run, after this long without news.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # The api-server answers its first task slowly on a loaded machine.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
        # Nothing may default to the real Hub.
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    return AirflowStack(home=home, dags_folder=dags, env=env)


def print_table(rows: list[Row]) -> None:
    say()
    say(
        f"{'scenario':<32} {'run state':<24} {'truth':<6} {'GPU min after':>13} {'deadline':<13} "
        f"{'stopped by':<15} {'GPU min':>8} {'goal':<5}"
    )
    say("-" * 124)
    for row in rows:
        truth = {True: "yes", False: "NO", None: "n/a"}[row.truthful]
        after = "-" if row.billed_after is None else f"{row.billed_after:.2f}"
        total = "-" if row.gpu_minutes is None else f"{row.gpu_minutes:.2f}"
        say(
            f"{row.name:<32} {row.run_state:<24} {truth:<6} {after:>13} {row.deadline:<13} "
            f"{row.stopped_by:<15} {total:>8} {'ok' if row.goals_met else 'MISS':<5}"
        )
    say()
    for row in rows:
        say(f"{row.name}:")
        if row.error:
            say(f"  NOT RUN TO THE END: {row.error}")
        if row.ratio is not None:
            say(f"  billed GPU minutes per minute of work: {row.ratio:.3f} (goal: at most 1.1)")
        for note in row.notes:
            say(f"  {note}")


def main() -> int:
    """Run every scenario; return 1 when a goal is missed."""
    version = importlib.metadata.version("apache-airflow")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    logging.getLogger("airflow_provider_spaces.emulator").setLevel(logging.WARNING)
    WORK_DIR.mkdir(exist_ok=True)
    say(f"Fault matrix: Airflow {version}, LocalExecutor on SQLite, the Hub emulated on 127.0.0.1")
    say(
        f"Hub clock {SPEED:.0f}x real time. Each real second Airflow spends between tasks bills {SPEED:.0f} "
        "emulated seconds;"
    )
    say(
        f"with {WORK_SECONDS:.0f} real s of work ({WORK_SECONDS * SPEED / 60:.0f} min on the Hub), Airflow's "
        "latency weighs in the ratio as in a real run of two minutes of work (never less), and the app's "
        "start as in a real hour-long window."
    )
    say(
        f"Guard every {GUARD_INTERVAL_SECONDS:.0f} real s ({GUARD_INTERVAL_MINUTES:.0f} min on the Hub); "
        f"lease {MAX_DURATION_SECONDS:.0f} s + {GRACE_SECONDS:.0f} s grace; failsafe sleep {FAILSAFE_SLEEP} "
        "Hub seconds. Minutes below are on the Hub's clock."
    )

    started = time.monotonic()
    rows: list[Row] = []
    with HubEmulator(speed=SPEED) as hub:
        stack = make_stack(hub, version)
        matrix = Matrix(hub, stack)
        # The scheduler starts the nightly run as soon as the DAG is parsed: the Space must exist.
        matrix.fresh_space()
        try:
            # Airflow writes its configuration, with the secret its components sign their calls
            # with, on first use: once here, before the components would each write their own.
            stack.airflow("config", "get-value", "core", "executor")
            stack.start()
            stack.wait_ready()
            stack.wait_for_dag(WINDOW_DAG)
            stack.wait_for_dag(GUARD_DAG)
            matrix.set_guard_paused(True)
            for name, expected, scenario in SCENARIOS:
                row = Row(name, expected)
                rows.append(row)
                if time.monotonic() - started > MATRIX_BUDGET:
                    row.error = "the matrix ran out of time"
                    continue
                say(f"[{time.monotonic() - started:6.0f} s] {name} ...")
                if scenario is not clean_run:
                    matrix.fresh_space()
                skew = time.time() - time.monotonic()
                try:
                    scenario(matrix, row)
                except Exception as error:
                    # A scenario that breaks is reported as such; the others' figures still count.
                    row.error = f"{type(error).__name__}: {error}"[:500]
                moved = time.time() - time.monotonic() - skew
                if abs(moved) > 1.0:
                    row.notes.append(
                        f"this machine's wall clock (Airflow's) jumped {moved:+.0f} s during the scenario; "
                        "its times are placed on the Hub's clock through the nearest logged request"
                    )
                say(f"           -> {row.run_state}, stopped by {row.stopped_by or '?'}")
        finally:
            stack.stop()

    print_table(rows)
    missed = [row.name for row in rows if not row.goals_met]
    say()
    say(f"Took {(time.monotonic() - started) / 60:.1f} min.")
    if missed:
        say(f"GOALS MISSED: {', '.join(missed)}")
        return 1
    say("Every goal met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
