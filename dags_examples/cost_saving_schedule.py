"""Stop paying for Spaces at night and on weekends, and bring them back in business hours.

Every 30 minutes this DAG looks at each Space of a list at the local time of that Space's own time
zone, and puts it where the schedule says it should be:

    plan >> to_bring_back >> bring_back[space]         (in business hours: running on its
                                                         daytime hardware)
         >> to_pause      >> pause_off_hours[space]    (outside them, policy "pause": paused)
         >> to_downgrade  >> downgrade_off_hours[space] (outside them, policy "downgrade": back
                                                         on cpu-basic)

- ``plan`` reads the list, checks every entry (time zone, policy, hours, days) before any request,
  and sorts the Spaces into the three groups at the run's time; ``to_*`` hand each group to its
  mapped task (Airflow maps only over a task's whole return value). None of them calls the Hub.
- Each group is one mapped task with one task instance per Space (named after the Space in the
  UI). Every instance reads its Space first and sends nothing when the Space is already where it
  should be, so a run that finds everything in place costs one read per Space, and a Space that
  someone restarted at night is paused again by the next run.
- ``bring_back`` requests the daytime flavor (or restarts a paused Space that already has it) and
  waits until the Space runs there, failing with the Hub's words when it cannot.
  ``downgrade_off_hours`` pauses a Space whose downgrade the Hub refuses, so the bill stops anyway.

The list lives in the Airflow Variable ``spaces_cost_schedule`` (JSON), so that the platform team
changes it without a deploy; without that Variable, the ``SPACES_SCHEDULE_*`` environment variables
below describe a single-policy list. The Variable holds either a list of entries, or an object with
``defaults`` (applied to every entry) and ``spaces``::

    {"defaults": {"time_zone": "Europe/Paris", "policy": "pause"},
     "spaces": ["acme/demo-chat",
                {"space_id": "acme/demo-vision", "policy": "downgrade", "hardware": "t4-small",
                 "time_zone": "America/New_York", "open": "09:00", "close": "18:00"}]}

Entry keys: ``space_id``; ``hardware``, its daytime flavor (default ``cpu-basic``); ``policy``,
``pause`` or ``downgrade``; ``time_zone`` (an IANA name); ``open`` and ``close``, local ``HH:MM``
(business hours run from ``open`` up to, not including, ``close``); ``days``, the business days
(``mon,tue,wed,thu,fri`` by default, or a list).

Polling budget: at most ``SPACES_SCHEDULE_PARALLEL`` Spaces (16) are moved and watched at once,
each read every ``SPACES_SCHEDULE_POLL_SECONDS`` (60): at most 80 polls per five minutes, on top of
one read and at most one change per Space. Even a morning when all of 200 Spaces come back in the
same five minutes stays under 500 calls, within a free token's 1,000. The waits follow Airflow's
``[operators] default_deferrable``: on, they run in the triggerer and hold no worker slot.

Parsing this file reads no Variable, looks up no connection and sends no request.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from typing import Any

import pendulum
from airflow.sdk import DAG, Variable, task

from airflow_provider_spaces.operators.spaces import (
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
    SpacePauseOperator,
)

VARIABLE = os.environ.get("SPACES_SCHEDULE_VARIABLE", "spaces_cost_schedule")
# Used when the Variable does not exist: one policy for a comma-separated list of Spaces.
DEFAULT_SPACES = os.environ.get("SPACES_SCHEDULE_SPACES", "demo/private-app")
DEFAULT_HARDWARE = os.environ.get("SPACES_SCHEDULE_HARDWARE", "cpu-basic")
DEFAULT_POLICY = os.environ.get("SPACES_SCHEDULE_POLICY", "pause")
DEFAULT_TIME_ZONE = os.environ.get("SPACES_SCHEDULE_TIME_ZONE", "Europe/Paris")
DEFAULT_OPEN = os.environ.get("SPACES_SCHEDULE_OPEN", "08:00")
DEFAULT_CLOSE = os.environ.get("SPACES_SCHEDULE_CLOSE", "19:00")
DEFAULT_DAYS = os.environ.get("SPACES_SCHEDULE_DAYS", "mon,tue,wed,thu,fri")
CONN_ID = os.environ.get("SPACES_SCHEDULE_CONN_ID", "huggingface_default")
PARALLEL = int(os.environ.get("SPACES_SCHEDULE_PARALLEL", "16"))
POLL_SECONDS = float(os.environ.get("SPACES_SCHEDULE_POLL_SECONDS", "60"))
TIMEOUT_SECONDS = float(os.environ.get("SPACES_SCHEDULE_TIMEOUT_SECONDS", str(30 * 60)))

POLICIES = ("pause", "downgrade")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")

log = logging.getLogger(__name__)


def load_schedule(raw: Any) -> list[dict[str, Any]]:
    """Return every entry of a schedule, its defaults applied and every value checked.

    :raises ValueError: naming each bad entry and what is wrong with it; nothing is planned then.
    """
    defaults: dict[str, Any] = {
        "hardware": DEFAULT_HARDWARE,
        "policy": DEFAULT_POLICY,
        "time_zone": DEFAULT_TIME_ZONE,
        "open": DEFAULT_OPEN,
        "close": DEFAULT_CLOSE,
        "days": DEFAULT_DAYS,
    }
    if isinstance(raw, Mapping):
        defaults.update(raw.get("defaults") or {})
        raw = raw.get("spaces")
    if not isinstance(raw, list):
        raise ValueError("the schedule must be a list of Spaces, or an object with a 'spaces' list")

    entries, problems = [], []
    for position, item in enumerate(raw):
        entry = {**defaults, **(item if isinstance(item, Mapping) else {"space_id": item})}
        problem = _problem(entry)
        if problem:
            problems.append(f"entry {position} ({entry.get('space_id')!r}): {problem}")
        else:
            entries.append(entry)
    if problems:
        raise ValueError("the cost schedule has bad entries, so nothing was changed: " + "; ".join(problems))
    return entries


def _problem(entry: Mapping[str, Any]) -> str | None:
    """Say what is wrong with one entry, or return None."""
    if not isinstance(entry.get("space_id"), str) or "/" not in entry["space_id"]:
        return "space_id must be 'namespace/name'"
    if entry["policy"] not in POLICIES:
        return f"policy must be one of {', '.join(POLICIES)}, not {entry['policy']!r}"
    try:
        pendulum.timezone(entry["time_zone"])
    except Exception:
        return f"unknown time zone {entry['time_zone']!r}"
    for key in ("open", "close"):
        if not isinstance(entry[key], str) or not _CLOCK.fullmatch(entry[key]):
            return f"{key} must be a time of day as HH:MM, not {entry[key]!r}"
    if entry["open"] >= entry["close"]:
        return f"open ({entry['open']}) must come before close ({entry['close']})"
    unknown = sorted(set(_days(entry["days"])) - set(DAY_NAMES))
    if unknown:
        return f"unknown days {', '.join(unknown)}; use {','.join(DAY_NAMES)}"
    return None


def _days(days: str | Iterable[str]) -> list[str]:
    parts = days.split(",") if isinstance(days, str) else list(days)
    return [str(day).strip().lower()[:3] for day in parts if str(day).strip()]


def in_business_hours(entry: Mapping[str, Any], at: datetime) -> bool:
    """Tell whether ``at`` falls in the entry's business hours, in the entry's time zone."""
    local = pendulum.instance(at).in_timezone(pendulum.timezone(entry["time_zone"]))
    opens, closes = (time.fromisoformat(entry[key]) for key in ("open", "close"))
    on_a_business_day = DAY_NAMES[local.weekday()] in _days(entry["days"])
    return on_a_business_day and opens <= local.time() < closes


def plan_for(entries: Iterable[Mapping[str, Any]], at: datetime) -> dict[str, list[Any]]:
    """Sort the Spaces into those to bring back, to pause and to downgrade at ``at``."""
    plan: dict[str, list[Any]] = {"bring_back": [], "pause": [], "downgrade": []}
    for entry in entries:
        if in_business_hours(entry, at):
            plan["bring_back"].append({"space_id": entry["space_id"], "hardware": entry["hardware"]})
        else:
            plan[entry["policy"]].append(entry["space_id"])
    return plan


@task
def plan(logical_date: datetime | None = None) -> dict[str, list[Any]]:
    """Read the schedule and sort its Spaces for the run's time (its logical date, else now)."""
    raw = Variable.get(VARIABLE, default=None)
    schedule = (
        json.loads(raw) if raw is not None else [s.strip() for s in DEFAULT_SPACES.split(",") if s.strip()]
    )
    entries = load_schedule(schedule)

    at = logical_date or pendulum.now("UTC")
    result = plan_for(entries, at)
    log.info(
        "At %s: %d Spaces to bring back, %d to pause, %d to downgrade (schedule from %s)",
        at.isoformat(),
        len(result["bring_back"]),
        len(result["pause"]),
        len(result["downgrade"]),
        f"Variable {VARIABLE}" if raw is not None else "the environment",
    )
    return result


@task
def pick(planned: dict[str, list[Any]], group: str) -> list[Any]:
    """Return one group of the plan, for its mapped task."""
    return planned[group]


with DAG(
    dag_id="cost_saving_schedule",
    description="Pause or downgrade Spaces outside business hours, per time zone, and bring them back",
    schedule="*/30 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["huggingface", "cost"],
) as dag:
    # Shared by the three mapped tasks: the connection, the budget, the name shown per Space.
    each_space: dict[str, Any] = {
        "spaces_conn_id": CONN_ID,
        "max_active_tis_per_dagrun": PARALLEL,
        "map_index_template": "{{ task.space_id }}",
    }
    planned = plan()
    SpaceHardwareUpgradeOperator.partial(
        task_id="bring_back", poll_interval=POLL_SECONDS, timeout=TIMEOUT_SECONDS, **each_space
    ).expand_kwargs(pick.override(task_id="to_bring_back")(planned, "bring_back"))
    SpacePauseOperator.partial(task_id="pause_off_hours", **each_space).expand(
        space_id=pick.override(task_id="to_pause")(planned, "pause")
    )
    SpaceHardwareDowngradeOperator.partial(
        task_id="downgrade_off_hours", poll_interval=POLL_SECONDS, timeout=TIMEOUT_SECONDS, **each_space
    ).expand(space_id=pick.override(task_id="to_downgrade")(planned, "downgrade"))
