"""The emulator's clock: wall time scaled by a speed factor, and movable by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
        if seconds < 0:
            raise ValueError(f"advance: seconds must be 0 or more, not {seconds!r}")
        with self._lock:
            self._anchor_emulated += seconds
            return self._now_locked()

    def _now_locked(self) -> float:
        return self._anchor_emulated + (self._monotonic() - self._anchor_real) * self._speed

    @staticmethod
    def _validate_speed(speed: float) -> None:
        # Zero would freeze the clock, which advance() already offers more explicitly.
        if not speed > 0:
            raise ValueError(f"speed must be above 0, not {speed!r}")
