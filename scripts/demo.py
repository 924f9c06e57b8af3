"""Run the GPU training window in a real Airflow against the local Hub emulator, and show the bill.

``python3 dev.py demo`` runs this script inside the project's environment. It:

1. gives Airflow a home of its own under ``.demo/`` (SQLite; its database is made on the first run
   and kept for the next ones);
2. starts the Hub emulator on 127.0.0.1 with a clock 60 times faster than real time, and creates
   the Space ``demo/gpu-trainer`` on ``cpu-basic``;
3. runs ``dags_examples/gpu_training_window.py`` with ``airflow dags test``, its connection
   pointing at the emulator, and shows the Space's progress as the task logs tell it;
4. reads the emulator's billing ledger and prints what happened to the Space, the GPU minutes
   billed and their cost against the minutes of work.

It exits with 1 when the Space did not end on ``cpu-basic`` or the run failed. Nothing here talks
to anything but the emulator it starts.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".demo"
DAG_ID = "gpu_training_window"
SPACE_ID = "demo/gpu-trainer"
GPU = "a10g-large"
FREE = "cpu-basic"
CONN_ID = "spaces_demo"

# Emulated seconds per real second: a night's window fits in half a minute.
SPEED = 60.0
# Emulated durations: a GPU image build of two minutes, half a minute for the app to start.
BUILD_SECONDS = 120.0
START_SECONDS = 30.0
# The work and the polling, in emulated time; the DAG gets them in real seconds.
WORK_MINUTES = 10.0
POLL_SECONDS = 30.0
RUN_TIMEOUT = 300.0

_LOG_LINE = re.compile(r"\[\s*(?P<level>[a-z]+)\s*\] (?P<message>.*?) \[[\w.]+\](?: loc=\S+)?\s*$")
_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")


def say(text: str = "") -> None:
    """Print one line of the demo's own output at once."""
    print(text, flush=True)


def airflow_environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Return the environment of the Airflow subprocesses: this demo's home, nothing inherited."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "HF_", "HUGGING_FACE_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            # The DAG's own default endpoint must never be the real Hub, even by mistake.
            "HF_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    env.update(extra)
    return env


def prepare_airflow(home: Path) -> None:
    """Create Airflow's database in ``home`` unless an earlier run did."""
    database = home / "airflow.db"
    if database.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    say(f"First run: creating Airflow's database in {home.relative_to(ROOT)} (takes a minute) ...")
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=airflow_environment(home, {}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        database.unlink(missing_ok=True)
        raise SystemExit(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def dag_settings(hub_url: str, token: str) -> dict[str, str]:
    """Return the environment that points the example DAG at the emulator, with demo timings."""
    connection = {"conn_type": "huggingface_spaces", "host": hub_url, "password": token}
    return {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
        "SPACES_WINDOW_SPACE_ID": SPACE_ID,
        "SPACES_WINDOW_GPU": GPU,
        "SPACES_WINDOW_CONN_ID": CONN_ID,
        "SPACES_WINDOW_WORK_SECONDS": str(WORK_MINUTES * 60 / SPEED),
        "SPACES_WINDOW_POLL_SECONDS": str(POLL_SECONDS / SPEED),
        "SPACES_WINDOW_GPU_TIMEOUT_SECONDS": str(30 * 60 / SPEED),
        "SPACES_WINDOW_DOWNGRADE_TIMEOUT_SECONDS": str(15 * 60 / SPEED),
    }


def run_dag(home: Path, settings: dict[str, str], log_path: Path, hub_clock: Callable[[], float]) -> int:
    """Run the DAG with ``airflow dags test``, echo the Space's progress, keep the full log.

    Each line shown starts with the real seconds since the run began and the emulated Hub's clock.
    """
    command = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID]
    started = time.monotonic()
    hub_started = hub_clock()
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command,
            env=airflow_environment(home, settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        # A run that hangs is stopped, so that the demo always ends.
        watchdog = threading.Timer(RUN_TIMEOUT, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                shown = progress_line(line)
                if shown:
                    say(
                        f"  {time.monotonic() - started:5.1f} s  {clock(hub_clock() - hub_started):>7}  {shown}"
                    )
            return process.wait()
        finally:
            watchdog.cancel()


def progress_line(line: str) -> str | None:
    """Return the part of an Airflow log line worth showing: task starts and the Space's news."""
    task = _TASK_START.search(line)
    if task:
        return f"task {task.group(1)}"
    match = _LOG_LINE.search(line.rstrip())
    if match is None:
        return None
    message = match.group("message")
    if SPACE_ID in message or match.group("level") in ("error", "critical"):
        return "    " + message
    return None


def upgrade_time(requests: list[dict[str, Any]], default: float) -> float:
    """Return the emulated time of the first hardware request, where the window begins."""
    for entry in requests:
        if entry["method"] == "POST" and entry["path"].endswith("/hardware"):
            return float(entry["emulated_time"])
    return default


def print_timeline(ledger: dict[str, Any], since: float) -> None:
    """Print each stage and hardware of the Space from ``since`` on, in emulated time."""
    say(f"What happened to {SPACE_ID}, from the GPU request on (emulated time):")
    for interval in ledger["intervals"]:
        end = interval["end"] if interval["end"] is not None else ledger["as_of"]
        if end <= since:
            continue
        start = max(interval["start"], since)
        billed = f"billed ${interval['usd']:.2f}" if interval["billed"] else "free"
        say(
            f"  {clock(start - since)}  {interval['stage']:<13} on {interval['flavor'] or '-':<11} "
            f"for {clock(end - start)}  {billed}"
        )


def clock(seconds: float) -> str:
    """Write emulated seconds as ``h:mm:ss`` or ``mm:ss``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def work_minutes(home: Path) -> float | None:
    """Return the emulated minutes the ``train`` task of the last run worked, from its XCom."""
    uri = f"file:{home / 'airflow.db'}?mode=ro"
    query = (
        "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'train' AND key = 'return_value' "
        "ORDER BY timestamp DESC LIMIT 1"
    )
    try:
        with sqlite3.connect(uri, uri=True) as db:
            row = db.execute(query, (DAG_ID,)).fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return float(value["work_seconds"]) * SPEED / 60


def print_bill(ledger: dict[str, Any], worked: float | None) -> None:
    """Print the GPU minutes billed, their cost, and their ratio to the minutes of work."""
    from airflow_provider_spaces.hub.catalog import known_flavor

    gpu_minutes = sum(minutes for flavor, minutes in ledger["billed_minutes"].items() if flavor != FREE)
    say(f"GPU minutes billed: {gpu_minutes:6.2f} min on {GPU}, costing ${ledger['usd']:.2f}")
    if worked:
        say(f"Minutes of work:    {worked:6.2f} min (the example's placeholder work, timed by the task)")
        say(f"Billed GPU minutes per minute of work: {gpu_minutes / worked:.2f}")
        say(
            "  (the app's start and Airflow's steps between the tasks are billed too, the image build is "
            f"not; at {SPEED:.0f}x, each real second Airflow spends between tasks bills an emulated minute)"
        )
    else:
        say("Minutes of work: unknown (the train task left no result)")
    flavor = known_flavor(GPU)
    if flavor is not None and flavor.usd_per_hour:
        say(f"Left running, the same GPU would have cost ${flavor.usd_per_hour * 24:.2f} a day.")


def main() -> int:
    """Run the demo; return the exit code."""
    # Only the Airflow subprocesses import Airflow: importing it here would set up its logging too.
    airflow_version = importlib.metadata.version("apache-airflow")
    from airflow_provider_spaces.emulator import HubEmulator

    home = DEMO_DIR / f"airflow-{airflow_version}"
    say(f"GPU training window demo: Airflow {airflow_version}, the Hub emulated on 127.0.0.1")
    prepare_airflow(home)
    # The emulator's server would log each start and stop; its own news is not the demo's.
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    logging.getLogger("airflow_provider_spaces.emulator").setLevel(logging.WARNING)

    with HubEmulator(speed=SPEED) as hub:
        hub.add_space(SPACE_ID, hardware=FREE, build_seconds=BUILD_SECONDS, start_seconds=START_SECONDS)
        say(f"Emulated Hub on {hub.url}, its clock {SPEED:.0f} times faster than real time.")
        say(f"Space {SPACE_ID} runs on {FREE}; a GPU build takes {clock(BUILD_SECONDS)} there (emulated).")
        say(f"Running DAG {DAG_ID} with airflow dags test (full log: .demo/last-run.log).")
        say("  real s  Hub time  (the task logs count real seconds)")
        began = hub.now()
        code = run_dag(home, dag_settings(hub.url, hub.write_token), DEMO_DIR / "last-run.log", hub.now)
        ledger = hub.ledger(SPACE_ID)
        runtime = hub.runtime(SPACE_ID)
        window_start = upgrade_time(hub.request_log(SPACE_ID), began)

    say()
    print_timeline(ledger, window_start)
    say()
    print_bill(ledger, work_minutes(home))
    return verdict(code, runtime)


def verdict(code: int, runtime: dict[str, Any]) -> int:
    """Say whether the Space is back on cpu-basic and the run succeeded; return the exit code."""
    hardware = runtime.get("hardware") or {}
    back = hardware.get("current") == FREE and hardware.get("requested") == FREE
    say(
        f"Final hardware: {hardware.get('current')} ({runtime['stage']}, {hardware.get('requested')} requested)"
    )
    if not back:
        say(f"FAILED: {SPACE_ID} is not back on {FREE}; see .demo/last-run.log")
        return 1
    if code != 0:
        say(f"FAILED: the DAG run failed (airflow dags test exited with {code}); see .demo/last-run.log")
        return 1
    say(f"OK: the Space is back on {FREE}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
