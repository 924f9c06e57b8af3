"""Suite-wide guards, and a real Airflow of the suite's own for the tests that need one.

Nothing in the suite may ever reach a real Hub: the environment variables that the Hugging Face
tools and our own defaults read are pointed at a closed port on 127.0.0.1 before any test module
is imported, and no token is inherited from the developer's machine.

Nothing may touch the developer's Airflow either: every session gets its own ``AIRFLOW_HOME`` in a
temporary folder, with a SQLite metadata database, before Airflow is first imported. Migrating
that database takes about ten seconds, so a migrated copy is kept per Airflow build in
``.airflow-test/`` and copied into each new session (see ``airflow_db``).

Fixtures for tests that run Airflow for real:

- ``airflow_db``: the session's migrated metadata database (a path).
- ``airflow_connection``: define an Airflow connection for one test, the way a deployment does
  with ``AIRFLOW_CONN_<ID>`` (JSON form, read by Airflow 3.1 and 3.3 alike).
- ``run_dag``: run a DAG with ``dag.test()`` and get back the run's state and, per task instance,
  its state, captured log and XComs. Deferred tasks run their trigger inline, as ``dag.test()``
  does on every supported release.
- ``airflow_logs``: every line Airflow's logging prints during one test (``.text``), through
  structlog and standard logging alike; ``caplog`` sees only the latter.

Fixtures for tests of the tasks against the emulated Hub:

- ``emulated_hub``: an emulator shared by the test module (its clock at 60x), reset for each test,
  with the default connection ``huggingface_default`` pointing at it with its write token.
- ``writes``: the requests that could change something, as (method, last path part).
- ``billed_now``: whether a Space's ledger bills the present moment.
- ``stored_leases``: the leases in the session's Airflow Variables, read and seeded directly
  in the database (the tasks reach them through the Task SDK); cleared before and after a test.
"""

# The network guard below must run before any other import; the imports after it are on purpose.
# ruff: noqa: E402

from __future__ import annotations

import os

# Port 9 (discard) on loopback: a client that falls back on its default endpoint fails at once
# instead of talking to the real Hub.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
    os.environ.pop(_name, None)
# A token file in the developer's own Hugging Face home must not leak into the suite either.
os.environ["HF_HOME"] = os.path.join(os.path.dirname(__file__), ".no-hf-home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_provider_spaces.emulator.server import HubEmulator


# --- An Airflow of the suite's own ------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_TEMPLATES = REPO_ROOT / ".airflow-test" / "db-templates"

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="spaces-airflow-"))
AIRFLOW_HOME = _SESSION_DIR / "home"
DAGS_FOLDER = AIRFLOW_HOME / "dags"
AIRFLOW_DB = AIRFLOW_HOME / "airflow.db"
DAGS_FOLDER.mkdir(parents=True)

# Settings from the developer's shell (an executor, a secrets backend, connections) must not
# leak in; the suite defines what it needs.
for _name in [name for name in os.environ if name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW_CONFIG": str(AIRFLOW_HOME / "airflow.cfg"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # An empty folder: dag.test() on 3.3 parses the default bundle's folder on every run.
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_DB}",
        # Plain log lines, so that captured logs read the same in a terminal and in CI.
        "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
    }
)


def _db_template_key() -> str:
    """Name the migrated database of this Airflow build, without importing Airflow.

    A template is reused only by the same Airflow version with the same migration files on the
    same SQLite library; anything else migrates afresh.
    """
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations, "Airflow is not installed"
    versions = Path(next(iter(spec.submodule_search_locations))) / "migrations" / "versions"
    digest = hashlib.sha256()
    digest.update(sqlite3.sqlite_version.encode())
    for path in sorted(versions.glob("*.py")):
        digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
    return f"airflow-{importlib.metadata.version('apache-airflow-core')}-{digest.hexdigest()[:12]}"


_DB_TEMPLATE = DB_TEMPLATES / _db_template_key() / "airflow.db"
# Copied now, before Airflow is imported and could open the file; migrating waits for a test
# that needs the database.
_DB_FROM_TEMPLATE = _DB_TEMPLATE.is_file()
if _DB_FROM_TEMPLATE:
    shutil.copyfile(_DB_TEMPLATE, AIRFLOW_DB)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Return the session's metadata database, migrated (from the template when there is one)."""
    if not _DB_FROM_TEMPLATE and not _is_migrated(AIRFLOW_DB):
        _migrate(AIRFLOW_DB)
        _save_template(AIRFLOW_DB)
    return AIRFLOW_DB


def _is_migrated(path: Path) -> bool:
    if not path.is_file():
        return False
    with contextlib.closing(sqlite3.connect(path)) as db:
        found = db.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
    return found is not None


def _migrate(path: Path) -> None:
    # A child process, so that no engine of this one holds the file while the schema is built.
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not _is_migrated(path):
        raise RuntimeError(f"airflow db migrate failed ({done.returncode}):\n{done.stdout[-3000:]}")


def _save_template(path: Path) -> None:
    # Written beside its final name and renamed, so that a session started meanwhile never copies
    # half a file; the template itself is never opened by Airflow.
    _DB_TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    partial = _DB_TEMPLATE.with_name(f"airflow.db.{os.getpid()}.partial")
    shutil.copyfile(path, partial)
    os.replace(partial, _DB_TEMPLATE)


# --- Connections --------------------------------------------------------------------------------


@pytest.fixture
def airflow_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Return a function that defines an Airflow connection for this test and returns its id.

    Call it as ``airflow_connection("my_conn", host=..., password=..., extra={...})``; the
    connection type defaults to ``huggingface_spaces``.
    """

    def define(conn_id: str, *, conn_type: str = "huggingface_spaces", **fields: Any) -> str:
        value = {"conn_type": conn_type, **{key: val for key, val in fields.items() if val is not None}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return define


# --- The emulated Hub, for the tasks --------------------------------------------------------------


@pytest.fixture(scope="module")
def _module_hub() -> Iterator[HubEmulator]:
    # Stopping a server costs uvicorn a fifth of a second: one per module, reset for each test.
    from airflow_provider_spaces.emulator.server import HubEmulator

    with HubEmulator(speed=60) as hub:
        yield hub


@pytest.fixture
def emulated_hub(_module_hub: HubEmulator, airflow_connection: Callable[..., str]) -> HubEmulator:
    """Return a reset emulated Hub, which the default connection points at."""
    _module_hub.reset()
    _module_hub.set_speed(60)
    airflow_connection("huggingface_default", host=_module_hub.url, password=_module_hub.write_token)
    return _module_hub


@pytest.fixture
def no_client_retries(emulated_hub: HubEmulator, airflow_connection: Callable[..., str]) -> None:
    """Point the default connection at the emulated Hub without the client's own retries.

    Every Hub error then reaches the task at once, for tests of what the task (or Airflow's own
    retries) makes of it.
    """
    airflow_connection(
        "huggingface_default",
        host=emulated_hub.url,
        password=emulated_hub.write_token,
        extra={"max_retries": 0},
    )


@pytest.fixture
def writes(emulated_hub: HubEmulator) -> Callable[..., list[tuple[str, str]]]:
    """Return a function listing the requests that could change something, oldest first."""

    def listed(space_id: str | None = None) -> list[tuple[str, str]]:
        return [
            (entry["method"], entry["path"].rsplit("/", 1)[-1])
            for entry in emulated_hub.request_log(space_id)
            if entry["method"] != "GET"
        ]

    return listed


@pytest.fixture
def billed_now(emulated_hub: HubEmulator) -> Callable[[str], bool]:
    """Return a function telling whether a Space's ledger bills the present moment."""

    def billed(space_id: str) -> bool:
        return bool(emulated_hub.ledger(space_id)["intervals"][-1]["billed"])

    return billed


# --- Leases in Airflow Variables ------------------------------------------------------------------


class StoredLeases:
    """The lease Variables of the session's database, read and written without a running task."""

    def all(self) -> dict[str, dict[str, Any]]:
        """Return every lease by Space id."""
        from airflow_provider_spaces.leases import LEASE_PREFIX

        return {
            key[len(LEASE_PREFIX) :]: json.loads(value)
            for key, value in self._rows()
            if key.startswith(LEASE_PREFIX)
        }

    def index(self) -> list[str]:
        """Return the Spaces in the lease index."""
        from airflow_provider_spaces.leases import INDEX_KEY

        return next((json.loads(value) for key, value in self._rows() if key == INDEX_KEY), [])

    def seed(self, lease: Any) -> None:
        """Store ``lease`` (a :class:`~airflow_provider_spaces.leases.Lease`) and index it, as a window would."""
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
        from sqlalchemy import delete

        from airflow_provider_spaces.leases import INDEX_KEY, lease_key

        index = sorted({*self.index(), lease.space_id})
        with create_session() as session:
            session.execute(delete(Variable).where(Variable.key == INDEX_KEY))
            session.add(Variable(key=lease_key(lease.space_id), val=json.dumps(lease.to_dict())))
            session.add(Variable(key=INDEX_KEY, val=json.dumps(index)))

    def clear(self) -> None:
        """Delete every lease and the index."""
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
        from sqlalchemy import delete

        with create_session() as session:
            session.execute(delete(Variable).where(Variable.key.like("spaces\\_lease%", escape="\\")))

    @staticmethod
    def _rows() -> list[tuple[str, str]]:
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(select(Variable).where(Variable.key.like("spaces\\_lease%", escape="\\")))
            return [(row.key, row.get_val()) for row in rows]


@pytest.fixture
def stored_leases(airflow_db: Path) -> Iterator[StoredLeases]:
    """Return the session's lease Variables, cleared before and after the test."""
    leases = StoredLeases()
    leases.clear()
    yield leases
    leases.clear()


# --- Running a DAG -------------------------------------------------------------------------------


@dataclass
class TaskRun:
    """One task instance of a finished ``dag.test()`` run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    log: str
    xcom: dict[str, Any]


@dataclass
class DagRunResult:
    """A finished ``dag.test()`` run: its state, its task instances and everything it logged.

    ``tasks`` is keyed by task id, or ``"task_id[i]"`` for mapped instances. Each task's ``log``
    holds the lines logged while it ran, its inline trigger included; ``log`` holds the whole run.
    The lines are Airflow's console output, which ``dag.test()`` prints without the secrets
    masker that a real deployment's task supervisor applies.
    """

    run_id: str
    state: str
    tasks: dict[str, TaskRun]
    log: str = field(repr=False)


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., DagRunResult]:
    """Return a function that runs a DAG object with ``dag.test()`` and reports on the run."""

    def run(dag: DAG, **test_kwargs: Any) -> DagRunResult:
        _make_dag_test_run_tasks_as_a_deployment_does()
        _register_dag(dag)
        with _LogCapture() as capture:
            dag_run = dag.test(**test_kwargs)
        return _collect(dag_run, capture)

    return run


@pytest.fixture
def airflow_logs() -> Iterator[_LogCapture]:
    """Capture every log line Airflow prints during the test; read them as ``.text``."""
    with _LogCapture() as capture:
        yield capture


def _make_dag_test_run_tasks_as_a_deployment_does() -> None:
    """Mend two ways in which ``dag.test()`` on Airflow 3.1 differs from a deployment.

    - ``dag.test()`` runs each task instance against an execution API served in this process.
      Airflow 3.3 builds that API (a FastAPI app, and a thread serving it) once per process;
      Airflow 3.1 builds a new one for every task instance, which costs two to four seconds each
      and left a mapped task over 200 Spaces running for ten minutes. The suite gives 3.1 the cache
      that later releases have: the same app answers the same calls, only built once.
    - A rescheduled sensor asks when its first poke started. In a deployment the answer reaches the
      task as a datetime; in 3.1's ``dag.test()`` it arrives unparsed, as a string, which breaks
      Airflow's own timeout arithmetic at the second poke. The suite parses it as a task process
      does; on 3.3, which already does, parsing again changes nothing.
    """
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time import supervisor

    build = supervisor.in_process_api_server
    if not hasattr(build, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(build)

    ask = TaskInstanceOperations.get_reschedule_start_date
    if not getattr(ask, "parses_its_answer", False):

        def parsed(self: Any, id: Any, try_number: int = 1) -> Any:
            answer = ask(self, id, try_number)
            return type(answer).model_validate(answer.model_dump())

        parsed.parses_its_answer = True  # type: ignore[attr-defined]
        TaskInstanceOperations.get_reschedule_start_date = parsed  # type: ignore[method-assign]


def _register_dag(dag: DAG) -> None:
    """Write ``dag`` into the default bundle, so that ``dag.test()`` finds it on every release.

    Airflow 3.1's ``dag.test()`` needs the DAG already serialized in the database, and 3.3's looks
    for it in a DAG bundle; both accept a DAG written into the default bundle, wherever its file.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


class _LogCapture:
    """Record every log line Airflow prints while it runs, split by the task instance running.

    Airflow 3 logs through two paths: structlog loggers (operators, triggers, the task runner)
    render with the processors in structlog's configuration, and standard ``logging`` records
    (module loggers, ``dag.test()`` itself) render through the root handler's formatter. The
    capture wraps the final structlog processor in place, which reaches loggers cached before it
    started, and adds a root handler with the same formatter. ``dag.test()`` logs
    ``[DAG TEST] starting task_id=...`` and ``... end task ...`` around each task instance; those
    records say which task the lines in between belong to.
    """

    _MARKER_LOGGER = "airflow.sdk.definitions.dag"

    def __init__(self) -> None:
        self.lines: list[tuple[str | None, str]] = []
        self.current: str | None = None
        self._processors: list[Any] = []
        self._renderer: Any = None
        self._handler: logging.Handler | None = None

    def __enter__(self) -> _LogCapture:
        import structlog

        self._processors = structlog.get_config()["processors"]
        self._renderer = self._processors[-1]
        self._processors[-1] = self._render
        self._handler = _RecordingHandler(self)
        logging.getLogger().addHandler(self._handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._processors[-1] = self._renderer
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)

    def _render(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        rendered = self._renderer(logger, method_name, event_dict)
        self.add(rendered if isinstance(rendered, str) else bytes(rendered).decode(errors="replace"))
        return rendered

    def add(self, line: str) -> None:
        self.lines.append((self.current, line))

    def starts_task(self, record: logging.LogRecord) -> None:
        """Make the task that ``record`` announces the owner of the lines that follow."""
        if self._is_marker(record, "[DAG TEST] starting task_id=") and len(record.args or ()) == 2:
            task_id, map_index = record.args  # type: ignore[misc]
            self.current = _task_key(str(task_id), int(map_index))

    def ends_task(self, record: logging.LogRecord) -> None:
        """Leave the lines after ``record`` to the run alone when it ends a task."""
        if self._is_marker(record, "[DAG TEST] end task"):
            self.current = None

    def _is_marker(self, record: logging.LogRecord, prefix: str) -> bool:
        return (
            record.name == self._MARKER_LOGGER
            and isinstance(record.msg, str)
            and record.msg.startswith(prefix)
        )

    @property
    def text(self) -> str:
        """Return every line captured so far."""
        return self.log_of()

    def log_of(self, key: str | None = None) -> str:
        return "\n".join(line for owner, line in self.lines if key is None or owner == key)


class _RecordingHandler(logging.Handler):
    def __init__(self, capture: _LogCapture) -> None:
        super().__init__(level=logging.NOTSET)
        self.capture = capture
        console = next(
            (h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)), None
        )
        if console is not None and console.formatter is not None:
            self.setFormatter(console.formatter)

    def emit(self, record: logging.LogRecord) -> None:
        # The markers belong to the task they start and end.
        self.capture.starts_task(record)
        self.capture.add(self.format(record))
        self.capture.ends_task(record)


def _task_key(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def _collect(dag_run: Any, capture: _LogCapture) -> DagRunResult:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)
        ).all()
        xcoms: dict[str, dict[str, Any]] = {}
        for row in rows:
            xcoms.setdefault(_task_key(row.task_id, row.map_index), {})[row.key] = (
                XComModel.deserialize_value(row)
            )

        tasks = {}
        for ti in dag_run.get_task_instances(session=session):
            key = _task_key(ti.task_id, ti.map_index)
            tasks[key] = TaskRun(
                task_id=ti.task_id,
                map_index=ti.map_index,
                state=_state(ti.state),
                try_number=ti.try_number,
                log=capture.log_of(key),
                xcom=xcoms.get(key, {}),
            )

    return DagRunResult(
        run_id=dag_run.run_id, state=_state(dag_run.state) or "", tasks=tasks, log=capture.log_of()
    )


def _state(value: Any) -> str | None:
    # States come back as enum members or plain strings depending on the release and the path.
    return None if value is None else str(getattr(value, "value", value))
