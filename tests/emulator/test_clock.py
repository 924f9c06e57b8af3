"""The emulated clock: scaled wall time that only moves forward."""

from __future__ import annotations

import pytest

from airflow_provider_spaces.emulator.clock import EmulatorClock


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


@pytest.mark.parametrize("speed", [0, -1], ids=["zero", "negative"])
def test_a_speed_that_would_stop_or_reverse_time_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be above 0"):
        EmulatorClock(speed)


def test_time_cannot_be_moved_back(real: FakeMonotonic) -> None:
    with pytest.raises(ValueError, match="seconds must be 0 or more"):
        EmulatorClock(1, monotonic=real).advance(-1)
