"""The emulated clock: scaled wall time that only moves forward."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_spaces.emulator.clock import EmulatorClock
from airflow_provider_spaces.emulator.server import HubEmulator


class FakeMonotonic:
    """A real-time source the test moves by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def real() -> FakeMonotonic:
    return FakeMonotonic()


def test_emulated_time_runs_speed_times_faster_than_real_time(real: FakeMonotonic) -> None:
    clock = EmulatorClock(60, monotonic=real)
    start = clock.now()

    real.value += 2

    assert clock.now() - start == pytest.approx(120)


def test_changing_the_speed_does_not_make_the_time_jump(real: FakeMonotonic) -> None:
    clock = EmulatorClock(10, monotonic=real)
    start = clock.now()
    real.value += 1

    clock.set_speed(1000)
    at_change = clock.now()
    real.value += 1

    assert at_change - start == pytest.approx(10)
    assert clock.now() - start == pytest.approx(1010)


def test_advance_moves_the_time_forward_by_hand(real: FakeMonotonic) -> None:
    clock = EmulatorClock(1, monotonic=real)
    start = clock.now()

    returned = clock.advance(3600)

    assert returned == clock.now() == pytest.approx(start + 3600)


@pytest.mark.parametrize(
    "speed",
    [0, -1, float("inf"), float("nan"), 1e308, True],
    ids=["zero", "negative", "infinite", "nan", "huge", "boolean"],
)
def test_a_speed_that_would_stop_reverse_or_break_time_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match=r"speed must be a number above 0 and at most 1e\+06"):
        EmulatorClock(speed)


@pytest.mark.parametrize(
    "seconds",
    [-1, float("inf"), float("nan"), 1e308],
    ids=["backwards", "infinite", "nan", "past-a-century"],
)
def test_time_cannot_be_moved_back_or_out_of_range(real: FakeMonotonic, seconds: float) -> None:
    clock = EmulatorClock(1, monotonic=real)
    before = clock.now()

    with pytest.raises(ValueError, match=r"advance: seconds must be a number from 0 to 3\.1536e\+09"):
        clock.advance(seconds)

    assert clock.now() == before


def test_the_admin_api_refuses_a_speed_json_cannot_carry(still_hub: HubEmulator) -> None:
    answer = requests.post(f"{still_hub.url}/_emulator/clock", json={"speed": 1e308}, timeout=10)
    shown = requests.get(f"{still_hub.url}/_emulator/clock", timeout=10)

    assert answer.status_code == 400
    assert "speed must be a number above 0" in answer.json()["error"]
    assert shown.status_code == 200 and shown.json()["result"]["speed"] == pytest.approx(0.001)
