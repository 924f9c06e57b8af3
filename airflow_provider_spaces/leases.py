"""Leases: who holds a Space's paid hardware, and until when, kept in Airflow's own store.

A GPU window takes a lease before it asks the Hub for the GPU and releases it once the Space is
back on free hardware (or paused). The lease names the holder (DAG, run, task) and an expiry: the
start, plus the longest the window may last, plus a grace. The guard
(:mod:`airflow_provider_spaces.guard`) puts back any Space whose lease expired, which covers what
a run cannot do for itself: a worker or scheduler that died, a teardown that never ran.

Each lease is one Airflow Variable, ``spaces_lease:<namespace>/<name>``, so that windows on
different Spaces never write the same key. It is not kept on the Space: changing a Space variable
restarts its app. A lease holds no secret, only ids and times.

The guard must find every Space that ever had a lease. Airflow 3.2 and later list Variables by
prefix from a task; for 3.1 every lease also adds its Space to an index Variable,
``spaces_lease_index``, and the guard reads both. Known shortcoming: Airflow Variables have no
compare-and-set, so two windows adding their first lease at the same instant could each write
the index without the other's Space. The writer reads the index back after a pause and adds its
Space again when it is missing, which narrows that to a writer stalled for longer than the pause
between its read and its write; listing by prefix (3.2 and later) closes it, and so does naming
the Space in the guard's configured list. A real compare-and-set on Variables would resolve it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from airflow_provider_spaces._compat import variable_keys

__all__ = [
    "DEFAULT_GRACE",
    "INDEX_KEY",
    "LEASE_PREFIX",
    "Lease",
    "LeaseConflict",
    "LeaseStore",
    "TaskSdkVariables",
    "lease_key",
]

log = logging.getLogger(__name__)

LEASE_PREFIX = "spaces_lease:"
INDEX_KEY = "spaces_lease_index"
# Time after the window's planned end before the guard acts: a late scheduler or a slow teardown
# should not have its Space pulled away while it is still putting it back.
DEFAULT_GRACE = timedelta(minutes=15)
_FORMAT_VERSION = 1
# Reading the index back after writing it: how long to wait first, and how often to try.
_INDEX_SETTLE_SECONDS = (0.2, 0.6)
_INDEX_ATTEMPTS = 5


def lease_key(space_id: str) -> str:
    """Return the Variable key of a Space's lease."""
    return f"{LEASE_PREFIX}{space_id}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LeaseConflict(Exception):
    """Another run holds an unexpired lease on the Space."""


@dataclass(frozen=True)
class Lease:
    """Who holds a Space's paid hardware, and until when (times in UTC)."""

    space_id: str
    hardware: str
    dag_id: str
    run_id: str
    task_id: str
    taken_at: datetime
    expires_at: datetime

    @classmethod
    def take(
        cls,
        space_id: str,
        hardware: str,
        *,
        dag_id: str,
        run_id: str,
        task_id: str,
        max_duration: timedelta,
        grace: timedelta,
        now: datetime | None = None,
    ) -> Lease:
        """Return a lease starting ``now`` and ending after ``max_duration`` and ``grace``."""
        start = now or _now()
        return cls(space_id, hardware, dag_id, run_id, task_id, start, start + max_duration + grace)

    @property
    def holder(self) -> str:
        """Name the holder: DAG, run and task."""
        return f"DAG {self.dag_id}, run {self.run_id}, task {self.task_id}"

    def expired(self, now: datetime | None = None) -> bool:
        """Tell whether the lease has run out."""
        return (now or _now()) >= self.expires_at

    def held_by(self, dag_id: str, run_id: str) -> bool:
        """Tell whether the run ``run_id`` of ``dag_id`` holds the lease."""
        return self.dag_id == dag_id and self.run_id == run_id

    def minutes_held(self, now: datetime | None = None) -> float:
        """Return the minutes since the lease was taken."""
        return max(0.0, ((now or _now()) - self.taken_at).total_seconds() / 60.0)

    def ended_now(self, now: datetime | None = None) -> Lease:
        """Return the same lease, expiring now: for a holder that gives up with money still running."""
        return Lease(
            self.space_id, self.hardware, self.dag_id, self.run_id, self.task_id, self.taken_at, now or _now()
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the lease as JSON-friendly values (the Variable's content, and XCom)."""
        return {
            "version": _FORMAT_VERSION,
            "space_id": self.space_id,
            "hardware": self.hardware,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "taken_at": self.taken_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, value: Any) -> Lease:
        """Read a lease back; raise ValueError when ``value`` is not one."""
        if not isinstance(value, dict):
            raise ValueError(f"a lease is a JSON object, not {type(value).__name__}")
        try:
            return cls(
                space_id=str(value["space_id"]),
                hardware=str(value["hardware"]),
                dag_id=str(value["dag_id"]),
                run_id=str(value["run_id"]),
                task_id=str(value["task_id"]),
                taken_at=_aware(datetime.fromisoformat(value["taken_at"])),
                expires_at=_aware(datetime.fromisoformat(value["expires_at"])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a lease: {error}") from error


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class VariableBackend(Protocol):
    """Where leases live: Airflow Variables, as a task reaches them."""

    def get(self, key: str) -> str | None:
        """Return the value of ``key``, or None when it does not exist."""

    def set(self, key: str, value: str) -> None:
        """Write ``value`` under ``key``."""

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is no error."""

    def keys(self, prefix: str) -> list[str] | None:
        """Return the keys under ``prefix``, or None when the store cannot list them."""


class TaskSdkVariables:
    """Airflow Variables through the Task SDK: usable from a running task only."""

    def get(self, key: str) -> str | None:
        """Return the value of ``key``, or None when it does not exist."""
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        """Write ``value`` under ``key``."""
        from airflow.sdk import Variable

        Variable.set(key, value)

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is no error."""
        from airflow.sdk import Variable

        Variable.delete(key)

    def keys(self, prefix: str) -> list[str] | None:
        """Return the keys under ``prefix``, or None on an Airflow that cannot list them."""
        return variable_keys(prefix)


class LeaseStore:
    """Take, read, release and list leases, one Airflow Variable per Space.

    :param backend: where the Variables live; the Task SDK's by default (from a running task).
    :param sleep: the pause before reading the index back; tests pass a fake.
    """

    def __init__(
        self, backend: VariableBackend | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.backend: VariableBackend = backend if backend is not None else TaskSdkVariables()
        self._sleep = sleep

    def get(self, space_id: str) -> Lease | None:
        """Return the lease on ``space_id``, or None when there is none.

        :raises ValueError: the Variable holds something that is not a lease.
        """
        raw = self.backend.get(lease_key(space_id))
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise ValueError(f"Variable {lease_key(space_id)} is not JSON: {error}") from error
        return Lease.from_dict(value)

    def take(self, lease: Lease, *, now: datetime | None = None) -> Lease | None:
        """Record ``lease``; return the lease it replaces (an expired one, or this run's own).

        :raises LeaseConflict: another run holds an unexpired lease on the Space.
        """
        previous = self._readable(lease.space_id)
        if (
            previous is not None
            and not previous.expired(now)
            and not previous.held_by(lease.dag_id, lease.run_id)
        ):
            raise LeaseConflict(
                f"Space {lease.space_id} is leased to {previous.holder} until "
                f"{previous.expires_at.isoformat(timespec='seconds')}"
            )

        self.backend.set(lease_key(lease.space_id), json.dumps(lease.to_dict()))
        self._index(lease.space_id)
        return previous

    def put(self, lease: Lease) -> None:
        """Overwrite the lease of ``lease.space_id`` as it is (to end it early, say)."""
        self.backend.set(lease_key(lease.space_id), json.dumps(lease.to_dict()))

    def release(self, space_id: str, *, dag_id: str | None = None, run_id: str | None = None) -> Lease | None:
        """Delete the lease on ``space_id``; with a run given, only when that run holds it.

        :return: the lease deleted, or None when there was none or another run holds it.
        """
        lease = self._readable(space_id)
        if lease is None:
            return None
        if dag_id is not None and run_id is not None and not lease.held_by(dag_id, run_id):
            log.warning("Not releasing the lease on Space %s: %s holds it now", space_id, lease.holder)
            return None
        self.backend.delete(lease_key(space_id))
        return lease

    def known_spaces(self) -> list[str]:
        """Return every Space that ever had a lease here (a released one included)."""
        found = set(self._read_index())
        listed = self.backend.keys(LEASE_PREFIX)
        if listed is not None:
            found.update(key[len(LEASE_PREFIX) :] for key in listed if key.startswith(LEASE_PREFIX))
        return sorted(found)

    def _readable(self, space_id: str) -> Lease | None:
        # A damaged lease must not stop a window from taking the Space or a guard from freeing it.
        try:
            return self.get(space_id)
        except ValueError as error:
            log.warning("Ignoring the unreadable lease on Space %s: %s", space_id, error)
            return None

    def _read_index(self) -> list[str]:
        raw = self.backend.get(INDEX_KEY)
        if raw is None:
            return []
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("Variable %s is not JSON; starting it afresh", INDEX_KEY)
            return []
        return [str(item) for item in value] if isinstance(value, list) else []

    def _index(self, space_id: str) -> None:
        """Add ``space_id`` to the index, reading it back to catch a concurrent writer."""
        for _ in range(_INDEX_ATTEMPTS):
            present = self._read_index()
            if space_id in present:
                return
            self.backend.set(INDEX_KEY, json.dumps(sorted({*present, space_id})))
            # Another writer that read the index before this write may still overwrite it.
            self._sleep(random.uniform(*_INDEX_SETTLE_SECONDS))
        if space_id not in self._read_index():
            log.warning(
                "Could not keep Space %s in %s against concurrent writers; the guard finds it only "
                "through its configured list or by listing Variables",
                space_id,
                INDEX_KEY,
            )
