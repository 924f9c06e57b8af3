"""The billing ledger: intervals per stage and flavor, billed minutes and dollars."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator

SPACE = "demo/app"
CENT = 1e-4


def test_thirty_minutes_on_a10g_large_bill_seventy_five_cents(still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE, hardware="a10g-large")

    still_hub.advance(30 * 60)
    ledger = still_hub.ledger(SPACE)

    assert ledger["usd"] == pytest.approx(0.75, abs=CENT)
    assert ledger["billed_minutes"]["a10g-large"] == pytest.approx(30, abs=CENT)


def test_a_hardware_change_bills_only_starting_and_running_on_the_new_flavor(
    still_hub: HubEmulator, api: Any
) -> None:
    still_hub.add_space(SPACE, build_seconds=120, start_seconds=60, schedule_seconds=60)
    api.post(f"/api/spaces/{SPACE}/hardware", json={"flavor": "t4-medium"})

    still_hub.advance(60 + 120 + 60 + 600)
    intervals = still_hub.ledger(SPACE)["intervals"]

    steps = [(i["stage"], i["group"], i["flavor"], i["billed"]) for i in intervals]
    assert steps == [
        ("RUNNING", "running", "cpu-basic", False),
        ("BUILDING", "building", "cpu-basic", False),
        ("APP_STARTING", "starting", "t4-medium", True),
        ("RUNNING", "running", "t4-medium", True),
    ]
    assert [round(i["minutes"], 3) for i in intervals[1:]] == [2.0, 1.0, 10.0]
    # 11 billed minutes at $0.60 an hour.
    assert still_hub.ledger(SPACE)["usd"] == pytest.approx(0.11, abs=CENT)


def test_paused_and_sleeping_time_is_not_billed(still_hub: HubEmulator, api: Any) -> None:
    still_hub.add_space(SPACE, hardware="a10g-small")
    still_hub.add_space("demo/sleepy", hardware="a10g-small", sleep_time=600)

    still_hub.advance(600)
    api.post(f"/api/spaces/{SPACE}/pause")
    still_hub.advance(3600)

    paused = still_hub.ledger(SPACE)
    sleepy = still_hub.ledger("demo/sleepy")
    assert paused["billed_minutes"]["a10g-small"] == pytest.approx(10, abs=CENT)
    assert paused["intervals"][-1]["stage"] == "PAUSED" and paused["intervals"][-1]["billed"] is False
    assert sleepy["billed_minutes"]["a10g-small"] == pytest.approx(10, abs=CENT)
    assert sleepy["intervals"][-1]["group"] == "sleeping"


@pytest.mark.parametrize("flavor", ["cpu-basic", "zero-a10g"], ids=["cpu-basic", "zerogpu"])
def test_free_flavors_are_never_billed(still_hub: HubEmulator, flavor: str) -> None:
    still_hub.add_space(SPACE, hardware=flavor)

    still_hub.advance(24 * 3600)

    assert still_hub.ledger(SPACE)["usd"] == 0
    assert still_hub.ledger(SPACE)["billed_minutes"] == {}


def test_an_unknown_flavor_bills_minutes_but_no_dollars_until_priced(still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE, hardware="h200x1")
    still_hub.advance(60 * 60)

    unpriced = still_hub.ledger(SPACE)
    still_hub.set_price("h200x1", 6.0)
    priced = still_hub.ledger(SPACE)
    still_hub.set_price("h200x1", 12.0, space_id=SPACE)
    overridden = still_hub.ledger(SPACE)

    assert unpriced["billed_minutes"]["h200x1"] == pytest.approx(60, abs=CENT)
    assert (unpriced["usd"], unpriced["unpriced_flavors"]) == (0, ["h200x1"])
    assert (priced["usd"], priced["unpriced_flavors"]) == (pytest.approx(6.0, abs=CENT), [])
    assert overridden["usd"] == pytest.approx(12.0, abs=CENT)


def test_the_whole_ledger_adds_up_every_space(still_hub: HubEmulator) -> None:
    still_hub.add_space("demo/one", hardware="a10g-large")
    still_hub.add_space("demo/two", hardware="a10g-large")
    still_hub.add_space("demo/three", hardware="t4-small")

    still_hub.advance(60 * 60)
    ledger = still_hub.ledger()

    assert set(ledger["spaces"]) == {"demo/one", "demo/two", "demo/three"}
    assert ledger["billed_minutes"]["a10g-large"] == pytest.approx(120, abs=CENT)
    assert ledger["billed_minutes"]["t4-small"] == pytest.approx(60, abs=CENT)
    assert ledger["usd"] == pytest.approx(1.5 + 1.5 + 0.4, abs=CENT)


def test_the_open_interval_runs_to_now(still_hub: HubEmulator) -> None:
    still_hub.add_space(SPACE, hardware="t4-small")
    still_hub.advance(120)

    last = still_hub.ledger(SPACE)["intervals"][-1]

    assert last["end"] is None
    assert last["minutes"] == pytest.approx(2, abs=CENT)


def test_a_negative_price_is_refused(still_hub: HubEmulator) -> None:
    with pytest.raises(ValueError, match="usd_per_hour must be 0 or more"):
        still_hub.set_price("h200x1", -1)
