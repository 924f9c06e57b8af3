"""Fixtures for the emulator's tests: raw HTTP against an emulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_spaces.emulator.server import HubEmulator

# A clock this slow barely moves while a test runs, so stage boundaries are reached with advance().
STILL = 0.001


class Api:
    """Send Hub API requests with one token, as a client would."""

    def __init__(self, hub: HubEmulator, token: str | None) -> None:
        self.url = hub.url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=10, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url + path, timeout=10, **kwargs)

    def runtime(self, space_id: str) -> dict[str, Any]:
        response = self.get(f"/api/spaces/{space_id}/runtime")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def _shared_hub() -> Iterator[HubEmulator]:
    # Stopping a server takes uvicorn a fifth of a second; one server per module, reset for each
    # test, keeps the suite fast. Tests of the lifecycle itself start their own.
    with HubEmulator(speed=STILL) as hub:
        yield hub


@pytest.fixture
def still_hub(_shared_hub: HubEmulator) -> HubEmulator:
    """A reset emulator whose clock moves only when a test advances it (near enough)."""
    _shared_hub.reset()
    _shared_hub.set_speed(STILL)
    return _shared_hub


@pytest.fixture
def api(still_hub: HubEmulator) -> Iterator[Api]:
    client = Api(still_hub, still_hub.write_token)
    yield client
    client.session.close()


@pytest.fixture
def make_api(still_hub: HubEmulator) -> Iterator[Any]:
    """Return a factory of ``Api`` clients for other tokens (None sends no token)."""
    made: list[Api] = []

    def make(token: str | None) -> Api:
        made.append(Api(still_hub, token))
        return made[-1]

    yield make
    for client in made:
        client.session.close()
