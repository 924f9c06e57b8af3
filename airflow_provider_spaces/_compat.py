"""The one module that knows which Airflow release is running.

We support Airflow 3.1 (the oldest release we test) up to 3.3. What differs between them is
resolved here, once, so that the hook, operators, sensor, trigger and links import a single name
and never look at a version themselves. What is the same on every supported release (the bases in
``airflow.sdk``, ``BaseTrigger`` and ``TriggerEvent`` in ``airflow.triggers.base``) is imported
from Airflow directly, not through this module.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow import __version__ as _airflow_version
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from asgiref.sync import sync_to_async
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferred",
    "TaskInstanceKey",
    "afind_connection",
    "amask_secret",
    "conf",
    "find_connection",
    "mask_secret",
]

log = logging.getLogger(__name__)

AIRFLOW_VERSION = Version(_airflow_version)

# 3.2 reads a connection type's form from the provider info and deprecates the hook's form methods.
AIRFLOW_V_3_2_PLUS = Version(AIRFLOW_VERSION.base_version) >= Version("3.2.0")

# The exceptions a task raises live in the Task SDK from 3.2 on, and importing them from
# ``airflow.exceptions`` there warns; 3.1 has them only in ``airflow.exceptions``. Trying the new
# home first keeps this right for every release in between without naming one.
try:
    from airflow.sdk.exceptions import (  # type: ignore[attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:
    from airflow.exceptions import (  # type: ignore[assignment,no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

# Task code reads Airflow's configuration from the Task SDK from 3.2 on; 3.1 has only the core one.
try:
    from airflow.sdk.configuration import conf  # type: ignore[attr-defined,import-not-found,unused-ignore]
except ImportError:
    from airflow.configuration import conf  # type: ignore[assignment,no-redef,unused-ignore]

# The key that ``BaseOperatorLink.get_link`` receives moved to the Task SDK after 3.1.
try:
    from airflow.sdk.types import TaskInstanceKey  # type: ignore[attr-defined]
except ImportError:
    from airflow.models.taskinstancekey import TaskInstanceKey  # type: ignore[assignment,no-redef]

# 3.3 has an awaitable masker for code that runs on the triggerer's event loop. On 3.1 the plain
# one, called on the loop, cannot reach the supervisor (it would have to block the loop), so the
# fallback runs it in a worker thread, from where it can.
try:
    from airflow.sdk.log import amask_secret  # type: ignore[attr-defined]
except ImportError:

    async def amask_secret(secret: str, name: str | None = None) -> None:  # type: ignore[misc]
        """Register ``secret`` with the secrets masker from a coroutine."""
        await sync_to_async(mask_secret)(secret, name)


def variable_keys(prefix: str) -> list[str] | None:
    """Return the keys of the Airflow Variables stored under ``prefix``, or None when unsupported.

    Listing Variables from a task arrived in the Task SDK after 3.1; there, callers keep their own
    index of the keys they wrote.
    """
    from airflow.sdk import Variable

    keys = getattr(Variable, "keys", None)
    if keys is None:
        return None
    return [str(key) for key in keys(prefix=prefix)]


def find_connection(conn_id: str) -> Connection | None:
    """Return the Airflow connection ``conn_id``, or None when no backend defines it."""
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    except ImportError as error:
        _raise_unless_no_supervisor(error, conn_id)
        return None


async def afind_connection(conn_id: str) -> Connection | None:
    """Return the Airflow connection ``conn_id`` from a coroutine, or None when none defines it."""
    try:
        return await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        return None
    except ImportError as error:
        _raise_unless_no_supervisor(error, conn_id)

    # Airflow 3.1's async lookup asks the task supervisor before any secrets backend, so without
    # one (a script, a test) it finds nothing at all; the sync lookup asks the backends first.
    return await sync_to_async(find_connection)(conn_id)


def _raise_unless_no_supervisor(error: ImportError, conn_id: str) -> None:
    """Let through 3.1's failed import of the task supervisor; raise any other import error.

    Outside a running task (a script, a test, the dag processor), Airflow 3.1 asks the task
    supervisor for a connection, and that ask fails with an ``ImportError`` because there is no
    supervisor; 3.3 answers ``AirflowNotFoundException`` there.
    """
    if "SUPERVISOR_COMMS" not in str(error):
        raise error
    log.debug("No task supervisor to ask for connection %r in this process", conn_id)
