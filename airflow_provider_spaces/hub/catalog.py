"""The built-in table of Space hardware flavors and their hourly prices.

The Hub's live catalog (``GET /api/spaces/hardware``) is the source of truth; this table only
helps where the catalog cannot be read: "did you mean" hints for a mistyped flavor, and price
estimates when the catalog is out of reach. It never decides whether a flavor is valid for the
client; only the emulator, which plays the Hub, refuses what this table (and its own prices)
lack. Prices are the Hub's published Spaces prices per hour in US dollars (2026); update them
here when the Hub changes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    """A hardware flavor as this package knows it without asking the Hub."""

    name: str
    pretty_name: str
    usd_per_hour: float | None  # None: not billed by the hour (ZeroGPU)
    accelerator: str | None  # e.g. "a10g", or None for CPU flavors
    gpus: int = 0

    @property
    def is_paid(self) -> bool:
        return bool(self.usd_per_hour)

    @property
    def usd_per_minute(self) -> float:
        return (self.usd_per_hour or 0.0) / 60.0


FREE_FLAVOR = "cpu-basic"

_FLAVORS = (
    Flavor("cpu-basic", "CPU basic", 0.0, None),
    Flavor("cpu-upgrade", "CPU upgrade", 0.03, None),
    Flavor("t4-small", "Nvidia T4 - small", 0.40, "t4", 1),
    Flavor("t4-medium", "Nvidia T4 - medium", 0.60, "t4", 1),
    Flavor("l4x1", "1x Nvidia L4", 0.80, "l4", 1),
    Flavor("l4x4", "4x Nvidia L4", 3.80, "l4", 4),
    Flavor("l40sx1", "1x Nvidia L40S", 1.80, "l40s", 1),
    Flavor("l40sx4", "4x Nvidia L40S", 8.30, "l40s", 4),
    Flavor("l40sx8", "8x Nvidia L40S", 23.50, "l40s", 8),
    Flavor("a10g-small", "Nvidia A10G - small", 1.00, "a10g", 1),
    Flavor("a10g-large", "Nvidia A10G - large", 1.50, "a10g", 1),
    Flavor("a10g-largex2", "2x Nvidia A10G - large", 3.00, "a10g", 2),
    Flavor("a10g-largex4", "4x Nvidia A10G - large", 5.00, "a10g", 4),
    Flavor("a100-large", "Nvidia A100 - large", 2.50, "a100", 1),
    Flavor("a100x4", "4x Nvidia A100", 10.00, "a100", 4),
    Flavor("a100x8", "8x Nvidia A100", 20.00, "a100", 8),
    Flavor("zero-a10g", "ZeroGPU", None, "a10g", 1),
)

KNOWN_FLAVORS: dict[str, Flavor] = {flavor.name: flavor for flavor in _FLAVORS}


def known_flavor(name: str | None) -> Flavor | None:
    """Return the built-in entry for ``name``, or None for a flavor this table does not know."""
    if name is None:
        return None
    return KNOWN_FLAVORS.get(name)


def is_paid_flavor(name: str | None) -> bool:
    """Tell whether running on ``name`` costs money.

    An unknown flavor counts as paid: the money-saving code must rather put back a Space it
    cannot price than leave a new, expensive flavor running.
    """
    if name is None or name == FREE_FLAVOR:
        return False
    flavor = known_flavor(name)
    return flavor is None or flavor.is_paid
