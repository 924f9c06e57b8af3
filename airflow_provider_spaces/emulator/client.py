"""``EmulatorClient``: script an emulator that runs in another process, over ``/_emulator/``.

It offers the same scripting methods as :class:`HubEmulator`, so that a tool or test can drive a
``python -m airflow_provider_spaces.emulator`` server the way it drives one in its own process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import requests

from airflow_provider_spaces.emulator.core import DEFAULT_QUOTA_WINDOW, UnknownSpaceError
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR

_TIMEOUT = 30.0


class EmulatorClient:
    """Talk to a running emulator's admin API at ``url`` (a loopback address)."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"EmulatorClient({self.url})"

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    @property
    def write_token(self) -> str:
        """Return the emulator's seeded write token."""
        return str(self._tokens()["write_token"])

    @property
    def read_token(self) -> str:
        """Return the emulator's seeded read-only token."""
        return str(self._tokens()["read_token"])

    def add_token(
        self, owner: str, *, role: str = "write", orgs: Iterable[str] = (), token: str | None = None
    ) -> str:
        """Accept a new token for ``owner`` and its ``orgs``; return its value."""
        body = {"owner": owner, "role": role, "orgs": list(orgs), "token": token}
        return str(self._call("POST", "/tokens", body)["token"])

    def set_payment_method(self, namespace: str, enabled: bool) -> None:
        """Give or take away a namespace's payment method."""
        self._call("POST", "/payment", {"namespace": namespace, "enabled": enabled})

    def add_space(
        self,
        space_id: str,
        *,
        hardware: str | None = FREE_FLAVOR,
        stage: str = "RUNNING",
        sdk: str = "gradio",
        private: bool = False,
        build_seconds: float | None = None,
        start_seconds: float | None = None,
        schedule_seconds: float | None = None,
        factory_build_seconds: float | None = None,
        sleep_time: int | None = None,
        storage: str | None = None,
        error_message: str | None = None,
        variables: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Space and return its runtime."""
        body = {
            "space_id": space_id,
            "hardware": hardware,
            "stage": stage,
            "sdk": sdk,
            "private": private,
            "build_seconds": build_seconds,
            "start_seconds": start_seconds,
            "schedule_seconds": schedule_seconds,
            "factory_build_seconds": factory_build_seconds,
            "sleep_time": sleep_time,
            "storage": storage,
            "error_message": error_message,
            "variables": dict(variables) if variables else None,
            "secrets": dict(secrets) if secrets else None,
        }
        return dict(self._call("POST", "/spaces", body))

    def runtime(self, space_id: str) -> dict[str, Any]:
        """Return a Space's runtime as the API would."""
        return dict(self._call("GET", f"/spaces/{space_id}/runtime"))

    def visit(self, space_id: str) -> dict[str, Any]:
        """Visit a Space: resets its idle time and wakes it when it sleeps."""
        return dict(self._call("POST", f"/spaces/{space_id}/visit"))

    def add_fault(
        self,
        kind: str,
        *,
        space_id: str | None = None,
        count: int | None = None,
        seconds: float | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Script a fault; see ``emulator.faults`` for kinds and options."""
        body = {"kind": kind, "space_id": space_id, "count": count, "seconds": seconds, **options}
        return dict(self._call("POST", "/faults", body))

    def faults(self) -> list[dict[str, Any]]:
        """Return the faults that are still active."""
        return list(self._call("GET", "/faults"))

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        self._call("DELETE", "/faults")

    def set_quota(self, limit: int, window_seconds: int = DEFAULT_QUOTA_WINDOW) -> None:
        """Set the per-token quota."""
        self._call("POST", "/quota", {"limit": limit, "window_seconds": window_seconds})

    def set_price(self, flavor: str, usd_per_hour: float, *, space_id: str | None = None) -> None:
        """Price a flavor for the ledger, for every Space or for one."""
        self._call("POST", "/prices", {"flavor": flavor, "usd_per_hour": usd_per_hour, "space_id": space_id})

    def set_speed(self, speed: float) -> None:
        """Change how many emulated seconds pass per real second."""
        self._call("POST", "/clock", {"speed": speed})

    def advance(self, seconds: float) -> float:
        """Move the emulated clock forward; return the new emulated time."""
        return float(self._call("POST", "/clock", {"advance": seconds})["now"])

    def now(self) -> float:
        """Return the emulated time."""
        return float(self._call("GET", "/clock")["now"])

    def ledger(self, space_id: str | None = None) -> dict[str, Any]:
        """Return the billing ledger of one Space, or of all."""
        return dict(self._call("GET", "/ledger", params={"space_id": space_id} if space_id else None))

    def request_log(self, space_id: str | None = None) -> list[dict[str, Any]]:
        """Return the logged API requests, optionally only those about one Space."""
        return list(self._call("GET", "/requests", params={"space_id": space_id} if space_id else None))

    def reset(self) -> None:
        """Forget Spaces, faults, extra tokens, prices and the log."""
        self._call("POST", "/reset")

    def seed_demo(self) -> list[str]:
        """Add the demo Spaces; return their ids."""
        return list(self._call("POST", "/seed-demo"))

    def _tokens(self) -> dict[str, Any]:
        if self._info is None:
            self._info = dict(self._call("GET", "/info"))
        return self._info

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        response = self._session.request(
            method, f"{self.url}/_emulator{path}", json=body, params=params, timeout=self._timeout
        )
        payload = response.json()
        if response.status_code == 404 and payload.get("type") == "UnknownSpaceError":
            raise UnknownSpaceError(payload["error"])
        if response.status_code == 400:
            raise ValueError(payload["error"])
        response.raise_for_status()
        return payload["result"]
