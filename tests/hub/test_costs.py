"""Prices and cost estimates: the Hub's catalog first, the built-in table when it cannot be read."""

from __future__ import annotations

import pytest

from airflow_provider_spaces.hub.client import SpacesClient
from airflow_provider_spaces.hub.costs import BUILT_IN_TABLE, HUB_CATALOG, NO_PRICE, PriceList
from airflow_provider_spaces.hub.errors import ServerError
from airflow_provider_spaces.hub.models import HardwareInfo


def entry(name: str, per_minute: float) -> HardwareInfo:
    info = HardwareInfo.from_payload({"name": name, "unitCostUSD": per_minute, "unitLabel": "minute"})
    assert info is not None
    return info


def test_prices_come_from_the_hubs_catalog_when_it_answers(hub_emulator):
    with SpacesClient(endpoint=hub_emulator.url, token=hub_emulator.write_token) as client:
        prices = PriceList.read(client.list_space_hardware)

    price = prices.price("a10g-large")

    assert (prices.source, price.source) == (HUB_CATALOG, HUB_CATALOG)
    assert price.usd_per_hour == pytest.approx(1.50)


def test_prices_fall_back_on_the_built_in_table_when_the_catalog_cannot_be_read(caplog):
    def failing() -> list[HardwareInfo]:
        raise ServerError("Service temporarily unavailable", status=503, action="read the hardware catalog")

    prices = PriceList.read(failing)

    assert prices.source == BUILT_IN_TABLE
    assert prices.price("a100x8").usd_per_hour == pytest.approx(20.0)
    assert "Could not read the Hub's hardware catalog, using the built-in prices" in caplog.text


@pytest.mark.parametrize(
    ("flavor", "usd_per_hour", "source"),
    [
        ("a10g-large", 1.80, HUB_CATALOG),
        ("t4-small", 0.40, BUILT_IN_TABLE),
        ("b200x8", None, NO_PRICE),
        ("zero-a10g", 0.0, BUILT_IN_TABLE),
    ],
    ids=["in-the-catalog", "missing-from-the-catalog", "unknown-anywhere", "not-billed-by-the-hour"],
)
def test_each_flavor_is_priced_from_the_best_source_that_has_it(flavor, usd_per_hour, source):
    prices = PriceList([entry("a10g-large", 0.03)])

    price = prices.price(flavor)

    assert price.source == source
    assert price.usd_per_hour == (None if usd_per_hour is None else pytest.approx(usd_per_hour))


def test_an_estimate_prices_the_minutes_held_and_says_where_the_price_comes_from():
    estimate = PriceList([entry("a10g-large", 0.025)]).estimate("a10g-large", 90)

    assert estimate.to_dict() == {
        "hardware": "a10g-large",
        "usd_per_hour": pytest.approx(1.5),
        "price_source": HUB_CATALOG,
        "minutes": 90.0,
        "usd": pytest.approx(2.25),
    }
    assert estimate.describe() == (
        "a10g-large held 90.0 min at $1.50 per hour (the Hub's catalog): about $2.25"
    )


def test_an_estimate_without_a_price_says_the_cost_is_unknown():
    estimate = PriceList().estimate("b200x8", 10)

    assert estimate.usd is None
    assert estimate.describe().endswith("an unknown cost")
