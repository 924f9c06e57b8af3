"""What a Space's hardware costs: hourly prices from the Hub's catalog, and estimates of a bill.

The Hub's live catalog (``GET /api/spaces/hardware``) is the source of truth for prices; when it
cannot be read, the built-in table of :mod:`~airflow_provider_spaces.hub.catalog` stands in, and
every price says which of the two it came from. Nothing here performs I/O: the caller passes a
function that reads the catalog, so that the sync client, the async one and tests share the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_spaces.hub.catalog import known_flavor
from airflow_provider_spaces.hub.errors import HubError
from airflow_provider_spaces.hub.models import HardwareInfo

__all__ = ["HUB_CATALOG", "BUILT_IN_TABLE", "NO_PRICE", "CostEstimate", "HourlyPrice", "PriceList"]

log = logging.getLogger(__name__)

HUB_CATALOG = "the Hub's catalog"
BUILT_IN_TABLE = "the built-in table"
NO_PRICE = "no price known"


@dataclass(frozen=True)
class HourlyPrice:
    """The price of one flavor per hour, and where it comes from.

    ``usd_per_hour`` is None when neither the catalog nor the built-in table prices the flavor.
    """

    flavor: str
    usd_per_hour: float | None
    source: str

    def describe(self) -> str:
        """Write the price for a log line, e.g. ``$1.50 per hour (the Hub's catalog)``."""
        if self.usd_per_hour is None:
            return f"an unknown price ({self.flavor} is in neither the Hub's catalog nor the built-in table)"
        return f"${self.usd_per_hour:.2f} per hour ({self.source})"


@dataclass(frozen=True)
class CostEstimate:
    """What holding a flavor for some minutes costs, at an hourly price."""

    price: HourlyPrice
    minutes: float

    @property
    def usd(self) -> float | None:
        """Return the estimated cost in dollars, or None without a price."""
        if self.price.usd_per_hour is None:
            return None
        return self.price.usd_per_hour * self.minutes / 60.0

    def describe(self) -> str:
        """Write the estimate for a log line."""
        usd = self.usd
        cost = f"about ${usd:.2f}" if usd is not None else "an unknown cost"
        return f"{self.price.flavor} held {self.minutes:.1f} min at {self.price.describe()}: {cost}"

    def to_dict(self) -> dict[str, Any]:
        """Return the estimate as a small JSON-friendly dict (XCom)."""
        usd = self.usd
        return {
            "hardware": self.price.flavor,
            "usd_per_hour": self.price.usd_per_hour,
            "price_source": self.price.source,
            "minutes": round(self.minutes, 4),
            "usd": None if usd is None else round(usd, 4),
        }


class PriceList:
    """Hourly prices by flavor: from the Hub's catalog when it was read, else the built-in table.

    :param catalog: the Hub's catalog entries, or None when the catalog could not be read.
    """

    def __init__(self, catalog: Iterable[HardwareInfo] | None = None) -> None:
        self._from_hub = catalog is not None
        self._catalog = {str(entry.name): entry for entry in catalog or ()}

    @classmethod
    def read(cls, fetch: Callable[[], list[HardwareInfo]]) -> PriceList:
        """Read the Hub's catalog with ``fetch``; fall back on the built-in table when that fails."""
        try:
            return cls(fetch())
        except HubError as error:
            log.warning("Could not read the Hub's hardware catalog, using the built-in prices: %s", error)
            return cls(None)

    @property
    def source(self) -> str:
        """Say where the prices come from."""
        return HUB_CATALOG if self._from_hub else BUILT_IN_TABLE

    def price(self, flavor: str) -> HourlyPrice:
        """Return the hourly price of ``flavor``; a flavor the catalog lacks falls back on the table."""
        entry = self._catalog.get(flavor)
        if entry is not None and entry.usd_per_hour is not None:
            return HourlyPrice(flavor, entry.usd_per_hour, HUB_CATALOG)

        known = known_flavor(flavor)
        if known is not None and known.usd_per_hour is not None:
            return HourlyPrice(flavor, known.usd_per_hour, BUILT_IN_TABLE)
        if known is not None:
            # Known but not billed by the hour (ZeroGPU): nothing accrues per minute.
            return HourlyPrice(flavor, 0.0, BUILT_IN_TABLE)
        return HourlyPrice(flavor, None, NO_PRICE)

    def estimate(self, flavor: str, minutes: float) -> CostEstimate:
        """Return what ``minutes`` on ``flavor`` cost."""
        return CostEstimate(self.price(flavor), max(0.0, minutes))
