"""The ``hub_emulator`` pytest fixture: a fresh emulated Hub on 127.0.0.1 for each test.

Registered as the ``pytest11`` entry point ``spaces_emulator``, so pytest loads this module for every
user who installs the package: it imports nothing heavy until a test asks for the fixture.

The clock runs at ``DEFAULT_SPEED`` emulated seconds per real second, so a 30 s build takes half a
second. A test can ask for other settings with the ``spaces_emulator`` marker, whose keyword
arguments go to :class:`HubEmulator`::

    @pytest.mark.spaces_emulator(speed=1, quota=10)
    def test_budget(hub_emulator): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_spaces.emulator.server import HubEmulator

DEFAULT_SPEED = 60.0


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so that ``--strict-markers`` suites accept it."""
    config.addinivalue_line("markers", "spaces_emulator(**options): options for the hub_emulator fixture")


@pytest.fixture
def hub_emulator(request: pytest.FixtureRequest) -> Iterator[HubEmulator]:
    """Yield a running ``HubEmulator`` with a fast clock; it stops when the test ends."""
    from airflow_provider_spaces.emulator.server import HubEmulator

    options: dict[str, Any] = {"speed": DEFAULT_SPEED}
    marker = request.node.get_closest_marker("spaces_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    with HubEmulator(**options) as hub:
        yield hub
