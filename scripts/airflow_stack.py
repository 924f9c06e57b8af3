"""Run Airflow's components as separate processes on this machine, for tests and fault scripts.

An ``AirflowStack`` is a throw-away Airflow deployment: its own ``AIRFLOW_HOME`` on SQLite, the
LocalExecutor, and the api-server, scheduler, dag-processor and triggerer each in a process of its
own, listening on 127.0.0.1 only where Airflow lets us choose. It exists so that the behaviours a
single ``dag.test()`` cannot show — a deferred wait really served by the triggerer, a worker killed
mid-task, a scheduler that is down when a window ends — are exercised against the real thing.

Runs are triggered and read through the api-server's REST API (the simple auth manager with every
user an admin, which is only acceptable because the stack is private to one test), and task
instance details that the API does not expose (a task's process id) are read from the SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AirflowStack:
    """A private Airflow deployment made of real processes.

    :param home: folder for ``AIRFLOW_HOME`` (created; its SQLite file lives there).
    :param dags_folder: folder the dag-processor parses.
    :param env: extra environment for every component (connections as ``AIRFLOW_CONN_*``, ...).
    :param components: which components ``start()`` launches.
    """

    home: Path
    dags_folder: Path
    env: Mapping[str, str] = field(default_factory=dict)
    components: Iterable[str] = COMPONENTS
    python: str = sys.executable
    api_port: int = field(default_factory=free_port)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    # -- setup -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                # Airflow's own advice, and a need on 3.1.0: without an issuer its tokens carry
                # ``iss: null``, which the locked PyJWT refuses, failing every API call.
                "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-stack",
                # Each stack gets its own log-server ports so that several can run at once.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # The dag-processor should notice a new file quickly in a test.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        return env

    def airflow(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command against this stack."""
        return subprocess.run(
            [self.python, "-m", "airflow", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")

    # -- processes -------------------------------------------------------------------------

    def _command(self, component: str) -> list[str]:
        base = [self.python, "-m", "airflow"]
        if component == "api-server":
            return [*base, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
        if component in ("scheduler", "triggerer"):
            return [*base, component, "--skip-serve-logs"]
        return [*base, component]

    def log_path(self, component: str) -> Path:
        return self.home / f"{component}.out"

    def start(self, component: str | None = None) -> None:
        """Start one component, or every configured one that is not running (the api-server first)."""
        names = [component] if component else list(self.components)
        if component is None and "api-server" in names:
            # Tasks report to the api-server from their first moment: on a loaded machine it can
            # take half a minute to answer, and a scheduler started beside it would see its first
            # tasks fail on refused connections.
            self._launch("api-server")
            self.wait_ready()
        for name in names:
            self._launch(name)

    def _launch(self, name: str) -> None:
        if name in self._procs and self._procs[name].poll() is None:
            return
        out = self.log_path(name).open("ab")
        # A session of its own, so that stopping a component also stops its children
        # (the LocalExecutor's workers are children of the scheduler).
        self._procs[name] = subprocess.Popen(
            self._command(name),
            env=self.environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def signal(self, component: str, sig: int) -> None:
        proc = self._procs.get(component)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)

    def stop(self, component: str | None = None, *, timeout: float = 30) -> None:
        """Stop one component, or all of them: SIGTERM, then SIGKILL after ``timeout``."""
        names = [component] if component else list(self._procs)
        for name in names:
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            proc = self._procs.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                proc.wait(timeout=10)
            self._procs.pop(name, None)

    def kill(self, component: str | None = None) -> None:
        """Kill one component, or the whole stack, without warning (SIGKILL to its process group)."""
        names = [component] if component else list(self._procs)
        for name in names:
            self.signal(name, signal.SIGKILL)
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.wait(timeout=10)

    def running(self, component: str) -> bool:
        proc = self._procs.get(component)
        return proc is not None and proc.poll() is None

    def output(self, component: str) -> str:
        path = self.log_path(component)
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> AirflowStack:
        self.migrate()
        self.start()
        self.wait_ready()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- REST API --------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 30) -> Any:
        import requests

        response = requests.request(method, f"{self.api_url}/api/v2{path}", json=body, timeout=timeout)
        if response.status_code >= 400:
            raise RuntimeError(
                f"Airflow API {method} {path} -> {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def wait_ready(self, timeout: float = 180) -> None:
        """Wait until the api-server answers and every started component is still alive."""
        import requests

        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.output(name)[-3000:]}")
            try:
                if requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the api-server did not answer within {timeout} s")
            time.sleep(1)

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` without import errors."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise RuntimeError(f"import errors: {json.dumps(errors)[:2000]}")
            try:
                self.api("GET", f"/dags/{dag_id}")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a manual run of ``dag_id`` now and return its run id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300, poll: float = 1.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout} s")
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        data = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in data["task_instances"]}

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 300
    ) -> str:
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            state = self.task_instances(dag_id, run_id).get(task_id, {}).get("state")
            if state in wanted:
                return str(state)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{task_id} still {state} after {timeout} s (waiting for {sorted(wanted)})"
                )
            time.sleep(0.5)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        import requests

        url = (
            f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        )
        response = requests.get(url, params={"full_content": "true"}, timeout=30)
        response.raise_for_status()
        return response.text

    # -- the database, read-only -----------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the stack's SQLite database directly (for what the REST API does not show)."""
        uri = f"file:{self.db_path}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as conn:
            return list(conn.execute(sql, params))

    def task_pid(self, dag_id: str, run_id: str, task_id: str) -> int | None:
        rows = self.query(
            "select pid from task_instance where dag_id = ? and run_id = ? and task_id = ?",
            (dag_id, run_id, task_id),
        )
        return int(rows[0][0]) if rows and rows[0][0] else None
