"""The cost-saving schedule example DAG: its business-hours rule per time zone, its checks of the
schedule, and a run with ``dag.test()`` that maps 200 Spaces against the emulated Hub.

The run happens on Friday 9 January 2026 at 22:30 UTC (its logical date), when business hours
(08:00 to 19:00, Monday to Friday) are open in some of the schedule's time zones and closed, or
the weekend has begun, in the others. The emulator's clock runs at 600x so that a rebuild lasts a
twentieth of a second; the DAG's waits poll as often.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags_examples" / "cost_saving_schedule.py"
FRIDAY_EVENING_UTC = datetime(2026, 1, 9, 22, 30, tzinfo=timezone.utc)
# Local time at FRIDAY_EVENING_UTC, and whether business hours are open there.
ZONES = {
    "America/Los_Angeles": True,  # Friday 14:30
    "America/Chicago": True,  # Friday 16:30
    "America/New_York": True,  # Friday 17:30
    "America/St_Johns": False,  # Friday 19:00: closing time, a half-hour zone
    "Europe/Paris": False,  # Friday 23:30
    "Asia/Kolkata": False,  # Saturday 04:00
    "Asia/Tokyo": False,  # Saturday 07:30
    "Pacific/Auckland": False,  # Saturday 11:30: in hours, but the weekend
}
DAY_HARDWARE = {"pause": "cpu-upgrade", "downgrade": "t4-small"}


def load_module(load_example: Any, **settings: str) -> Any:
    """Load the DAG file as a deployment parses it, its constants set through the environment."""
    return load_example(DAG_FILE.name, SPACES_SCHEDULE_CONN_ID="huggingface_default", **settings)


@pytest.fixture
def schedule(load_example):
    return load_module(load_example)


def entry(zone: str, **changes: Any) -> dict[str, Any]:
    return {
        "space_id": "demo/app",
        "time_zone": zone,
        "policy": "pause",
        "hardware": "cpu-basic",
        "open": "08:00",
        "close": "19:00",
        "days": "mon,tue,wed,thu,fri",
        **changes,
    }


@pytest.mark.parametrize(("zone", "open_now"), list(ZONES.items()), ids=list(ZONES))
def test_business_hours_are_judged_in_each_spaces_own_time_zone(schedule, zone, open_now):
    assert schedule.in_business_hours(entry(zone), FRIDAY_EVENING_UTC) is open_now


@pytest.mark.parametrize(
    ("changes", "at", "open_now"),
    [
        ({}, datetime(2026, 1, 12, 7, 0, tzinfo=timezone.utc), True),  # Monday 08:00 in Paris
        ({}, datetime(2026, 1, 12, 6, 59, tzinfo=timezone.utc), False),  # Monday 07:59
        ({}, datetime(2026, 7, 13, 6, 0, tzinfo=timezone.utc), True),  # summer time: 08:00
        ({"days": ["Saturday", "Sunday"]}, datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc), True),
        ({"open": "13:30", "close": "14:00"}, datetime(2026, 1, 12, 12, 45, tzinfo=timezone.utc), True),
    ],
    ids=["opening-minute", "minute-before-opening", "summer-time", "weekend-days", "half-hour-window"],
)
def test_opening_closing_days_and_summer_time_follow_the_entry(schedule, changes, at, open_now):
    assert schedule.in_business_hours(entry("Europe/Paris", **changes), at) is open_now


def test_defaults_apply_to_bare_space_ids_and_entries_override_them(schedule):
    entries = schedule.load_schedule(
        {
            "defaults": {"policy": "downgrade", "time_zone": "Asia/Tokyo"},
            "spaces": ["demo/one", {"space_id": "demo/two", "policy": "pause"}],
        }
    )

    assert [(e["space_id"], e["policy"], e["time_zone"]) for e in entries] == [
        ("demo/one", "downgrade", "Asia/Tokyo"),
        ("demo/two", "pause", "Asia/Tokyo"),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"time_zone": "Europe/Pariss"}, r"entry 0 \('demo/app'\): unknown time zone 'Europe/Pariss'"),
        ({"policy": "delete"}, r"policy must be one of pause, downgrade, not 'delete'"),
        ({"open": "8am"}, r"open must be a time of day as HH:MM, not '8am'"),
        ({"open": "19:00", "close": "08:00"}, r"open \(19:00\) must come before close \(08:00\)"),
        ({"days": "mon,fry"}, r"unknown days fry"),
        ({"space_id": "no-namespace"}, r"space_id must be 'namespace/name'"),
    ],
    ids=["time-zone", "policy", "opening-time", "hours-reversed", "day-name", "space-id"],
)
def test_a_bad_entry_is_refused_naming_it(schedule, bad, message):
    with pytest.raises(ValueError, match=message):
        schedule.load_schedule([entry("Europe/Paris", **bad)])


def test_a_bad_schedule_fails_the_plan_before_any_request(emulated_hub, run_dag, monkeypatch, load_example):
    monkeypatch.setenv(
        "AIRFLOW_VAR_SPACES_COST_SCHEDULE",
        json.dumps([entry("Europe/Paris"), entry("Mars/Olympus_Mons", space_id="demo/other")]),
    )
    emulated_hub.add_space("demo/app", hardware="cpu-upgrade")

    result = run_dag(load_module(load_example).dag, logical_date=FRIDAY_EVENING_UTC)

    assert result.state == "failed"
    assert result.tasks["plan"].state == "failed"
    assert "entry 1 ('demo/other'): unknown time zone 'Mars/Olympus_Mons'" in result.tasks["plan"].log
    assert emulated_hub.request_log() == []


# --- 200 Spaces ----------------------------------------------------------------------------------


def fleet() -> list[dict[str, Any]]:
    """Return 200 Spaces: every time zone, both policies, half of them already where they belong."""
    spaces = []
    for i in range(200):
        zone = list(ZONES)[i % len(ZONES)]
        policy = ("pause", "downgrade")[(i // len(ZONES)) % 2]
        spaces.append(
            {
                "space_id": f"demo/fleet-{i:03d}",
                "time_zone": zone,
                "policy": policy,
                "hardware": DAY_HARDWARE[policy],
                "in_place": (i // (2 * len(ZONES))) % 2 == 1,
                "open_now": ZONES[zone],
            }
        )
    return spaces


def seed(hub: Any, space: dict[str, Any]) -> None:
    """Create the Space where the schedule wants it, or in the opposite state."""
    off_state = {"stage": "PAUSED"} if space["policy"] == "pause" else {"hardware": "cpu-basic"}
    wanted_off = not space["open_now"]
    starts_off = wanted_off if space["in_place"] else not wanted_off
    options = {"hardware": space["hardware"], **(off_state if starts_off else {})}
    hub.add_space(space["space_id"], **options)


def expected_end(space: dict[str, Any]) -> tuple[str, str]:
    if space["open_now"]:
        return "RUNNING", space["hardware"]
    if space["policy"] == "pause":
        return "PAUSED", space["hardware"]
    return "RUNNING", "cpu-basic"


def expected_writes(space: dict[str, Any]) -> list[str]:
    """Return the one request that moves a Space, or none for a Space already in place."""
    if space["in_place"]:
        return []
    if space["open_now"]:
        # A paused Space already has its daytime flavor requested: a restart brings it back.
        return ["restart"] if space["policy"] == "pause" else ["hardware"]
    return ["pause"] if space["policy"] == "pause" else ["hardware"]


def shown_names(run_id: str) -> set[str]:
    """Return the names the UI shows for the mapped task instances of a run of the schedule."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance.rendered_map_index).where(
                TaskInstance.dag_id == "cost_saving_schedule",
                TaskInstance.run_id == run_id,
                TaskInstance.map_index >= 0,
            )
        )
        return set(rows)


@pytest.mark.slow
def test_200_mapped_spaces_each_end_where_the_schedule_wants_them(
    emulated_hub, run_dag, monkeypatch, load_example
):
    spaces = fleet()
    for space in spaces:
        seed(emulated_hub, space)
    listed = [
        {key: space[key] for key in ("space_id", "time_zone", "policy", "hardware")} for space in spaces
    ]
    monkeypatch.setenv("AIRFLOW_VAR_SPACES_COST_SCHEDULE", json.dumps(listed))
    emulated_hub.set_speed(600)
    dag = load_module(load_example, SPACES_SCHEDULE_POLL_SECONDS="0.05").dag

    result = run_dag(dag, logical_date=FRIDAY_EVENING_UTC)

    assert result.state == "success"
    instances = Counter(task.task_id for task in result.tasks.values() if task.state == "success")
    assert instances == {
        "plan": 1,
        "to_bring_back": 1,
        "to_pause": 1,
        "to_downgrade": 1,
        "bring_back": sum(s["open_now"] for s in spaces),
        "pause_off_hours": sum(not s["open_now"] and s["policy"] == "pause" for s in spaces),
        "downgrade_off_hours": sum(not s["open_now"] and s["policy"] == "downgrade" for s in spaces),
    }
    assert shown_names(result.run_id) == {s["space_id"] for s in spaces}
    ended = {s["space_id"]: emulated_hub.runtime(s["space_id"]) for s in spaces}
    assert {
        space_id: (runtime["stage"], runtime["hardware"]["current"] or runtime["hardware"]["requested"])
        for space_id, runtime in ended.items()
    } == {s["space_id"]: expected_end(s) for s in spaces}

    log = emulated_hub.request_log()
    writes = {s["space_id"]: [] for s in spaces}
    reads = Counter()
    for request in log:
        if request["method"] == "GET":
            reads[request["space_id"]] += 1
        else:
            writes[request["space_id"]].append(request["path"].rsplit("/", 1)[-1])
    assert writes == {s["space_id"]: expected_writes(s) for s in spaces}
    # One read per Space that needs nothing or only a pause; the waits read until arrival.
    for space in spaces:
        calls = reads[space["space_id"]]
        if space["in_place"] or expected_writes(space) == ["pause"]:
            assert calls == 1, space
        else:
            assert 2 <= calls <= 20, space
    assert len(log) < 200 * 4
