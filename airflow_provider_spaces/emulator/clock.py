"""The emulator's clock: wall time scaled by a speed factor, and movable by hand."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# A million emulated seconds per real one (a real second is eleven emulated days) is far past what
# any scenario needs; the bound keeps emulated times finite and JSON-friendly.
MAX_SPEED = 1_000_000.0
# A century: the longest jump of the clock by hand.
MAX_ADVANCE = 100 * 365 * 86_400.0


class EmulatorClock:
    """Tell the emulated time: emulated seconds pass ``speed`` times faster than real ones.

    The emulated time starts at the real wall time when the clock is made, so timestamps read as
    dates, and only moves forward: changing the speed re-anchors it at the current emulated time,
    and ``advance`` adds to it.
    """

    def __init__(self, speed: float = 1.0, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._validate_speed(speed)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._speed = speed
        self._anchor_real = monotonic()
        self._anchor_emulated = time.time()

    @property
    def speed(self) -> float:
        """Return the emulated seconds that pass in one real second."""
        return self._speed

    def now(self) -> float:
        """Return the emulated time in seconds since the Unix epoch."""
        with self._lock:
            return self._now_locked()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on; the emulated time does not jump."""
        self._validate_speed(speed)
        with self._lock:
            self._anchor_emulated = self._now_locked()
            self._anchor_real = self._monotonic()
            self._speed = speed

    def advance(self, seconds: float) -> float:
        """Move the emulated time forward by ``seconds`` and return the new time."""
        if not _is_number(seconds) or not 0 <= seconds <= MAX_ADVANCE:
            raise ValueError(f"advance: seconds must be a number from 0 to {MAX_ADVANCE:g}, not {seconds!r}")
        with self._lock:
            self._anchor_emulated += seconds
            return self._now_locked()

    def _now_locked(self) -> float:
        return self._anchor_emulated + (self._monotonic() - self._anchor_real) * self._speed

    @staticmethod
    def _validate_speed(speed: float) -> None:
        # Zero would freeze the clock, which advance() already offers more explicitly; an endless
        # speed would make every time the emulator shows infinite, which JSON cannot carry.
        if not _is_number(speed) or not 0 < speed <= MAX_SPEED:
            raise ValueError(f"speed must be a number above 0 and at most {MAX_SPEED:g}, not {speed!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
