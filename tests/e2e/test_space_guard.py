"""The guard DAG, run with ``dag.test()`` against the emulated Hub, with leases in real Variables.

Each test seeds Spaces in the emulator and leases in the session's Airflow database as windows
would have left them, runs one guard, and reads what it sent, what it returned and the leases left.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_spaces.guard import make_space_guard_dag
from airflow_provider_spaces.leases import Lease

GPU = "a10g-large"


def lease(space_id: str, *, taken_hours_ago: float, run_id: str = "scheduled_1") -> Lease:
    """Return a lease of a two-hour window with a quarter of an hour of grace."""
    now = datetime.now(timezone.utc)
    return Lease.take(
        space_id,
        GPU,
        dag_id="gpu_training_window",
        run_id=run_id,
        task_id="take_gpu_lease",
        max_duration=timedelta(hours=2),
        grace=timedelta(minutes=15),
        now=now - timedelta(hours=taken_hours_ago),
    )


def writes(hub, space_id: str) -> list[tuple[str, str]]:
    return [
        (entry["method"], entry["path"].rsplit("/", 1)[-1])
        for entry in hub.request_log(space_id)
        if entry["method"] != "GET"
    ]


def findings(result) -> dict[str, dict]:
    return {
        finding["space_id"]: finding for finding in result.tasks["guard"].xcom["return_value"]["findings"]
    }


def test_the_guard_puts_back_expired_and_unleased_spaces_and_leaves_held_and_free_ones(
    emulated_hub, stored_leases, run_dag
):
    emulated_hub.add_space("demo/expired", hardware=GPU)
    emulated_hub.add_space("demo/asleep", hardware=GPU, stage="SLEEPING")
    emulated_hub.add_space("demo/unleased", hardware="t4-small")
    emulated_hub.add_space("demo/held", hardware=GPU)
    emulated_hub.add_space("demo/stale", hardware="cpu-basic")
    emulated_hub.add_space("demo/free", hardware="cpu-basic")
    expired_lease = lease("demo/expired", taken_hours_ago=3)
    stored_leases.seed(expired_lease)
    for space_id in ("demo/asleep", "demo/stale"):
        stored_leases.seed(lease(space_id, taken_hours_ago=3))
    stored_leases.seed(lease("demo/held", taken_hours_ago=1))

    result = run_dag(make_space_guard_dag("guard_all_cases", spaces=["demo/unleased", "demo/free"]))

    assert result.state == "success"
    found = findings(result)
    assert {space_id: finding["verdict"] for space_id, finding in found.items()} == {
        "demo/expired": "expired_lease",
        "demo/asleep": "expired_lease",
        "demo/unleased": "unleased_paid",
        "demo/held": "leased",
        "demo/stale": "stale_lease",
        "demo/free": "free",
    }
    for space_id in ("demo/expired", "demo/asleep", "demo/unleased"):
        assert writes(emulated_hub, space_id) == [("POST", "hardware")]
        assert emulated_hub.runtime(space_id)["hardware"]["requested"] == "cpu-basic"
    for space_id in ("demo/held", "demo/stale", "demo/free"):
        assert writes(emulated_hub, space_id) == []
    assert set(stored_leases.all()) == {"demo/held"}

    expired = found["demo/expired"]
    checked_at = datetime.fromisoformat(result.tasks["guard"].xcom["return_value"]["checked_at"])
    held_hours = (checked_at - expired_lease.taken_at).total_seconds() / 3600
    assert (expired["usd_per_hour"], expired["price_source"]) == (1.5, "the Hub's catalog")
    assert expired["usd_since_lease"] == pytest.approx(1.5 * held_hours, abs=1e-4)
    assert expired["minutes_past_lease"] == pytest.approx((held_hours - 2.25) * 60, abs=0.01)
    assert result.tasks["guard"].xcom["return_value"]["usd_per_hour_stopped"] == pytest.approx(
        1.5 + 1.5 + 0.4
    )
    assert "Space demo/expired: expired_lease (lease of DAG gpu_training_window" in result.tasks["guard"].log
    assert "at $1.50 per hour (the Hub's catalog), about $4." in result.tasks["guard"].log


@pytest.mark.parametrize(
    ("policy", "dry_run", "sent", "action", "lease_kept"),
    [
        ("pause", False, [("POST", "pause")], "paused", False),
        ("report", False, [], "reported", True),
        ("downgrade", True, [], "dry run, would downgrade", True),
    ],
    ids=["pause", "report-only", "dry-run"],
)
def test_the_guard_acts_by_its_policy_and_a_dry_run_sends_nothing(
    emulated_hub, stored_leases, run_dag, policy, dry_run, sent, action, lease_kept
):
    emulated_hub.add_space("demo/expired", hardware=GPU)
    stored_leases.seed(lease("demo/expired", taken_hours_ago=3))

    result = run_dag(make_space_guard_dag(f"guard_{policy}_{dry_run}", policy=policy, dry_run=dry_run))

    assert result.state == "success"
    assert writes(emulated_hub, "demo/expired") == sent
    assert findings(result)["demo/expired"]["action"] == action
    assert ("demo/expired" in stored_leases.all()) is lease_kept


def test_the_guard_pauses_a_space_whose_downgrade_the_hub_refuses(emulated_hub, stored_leases, run_dag):
    emulated_hub.add_space("demo/expired", hardware=GPU)
    emulated_hub.add_fault(
        "refuse", space_id="demo/expired", action="hardware", status=403, code="QuotaExceeded"
    )
    stored_leases.seed(lease("demo/expired", taken_hours_ago=3))

    result = run_dag(make_space_guard_dag("guard_refused"))

    assert result.state == "success"
    assert writes(emulated_hub, "demo/expired") == [("POST", "hardware"), ("POST", "pause")]
    assert emulated_hub.runtime("demo/expired")["stage"] == "PAUSED"
    assert findings(result)["demo/expired"]["action"] == "downgrade refused, paused instead"


def test_the_guard_fails_its_run_when_it_cannot_stop_a_bill(emulated_hub, stored_leases, run_dag):
    emulated_hub.add_space("demo/stuck", hardware=GPU)
    emulated_hub.add_fault("refuse", space_id="demo/stuck", action="hardware", status=403)
    emulated_hub.add_fault("refuse", space_id="demo/stuck", action="pause", status=403)

    result = run_dag(make_space_guard_dag("guard_cannot", spaces=["demo/stuck"]))

    assert result.state == "failed"
    assert "The guard left 1 Space(s) that may still cost money: Space demo/stuck: unleased_paid" in (
        result.tasks["guard"].log
    )
    assert findings(result)["demo/stuck"]["money_may_run"] is True
