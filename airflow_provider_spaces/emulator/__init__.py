"""A local Hugging Face Hub for Spaces: the same HTTP contract, on a clock you control.

``HubEmulator`` runs it in a background thread, ``EmulatorClient`` scripts one that runs in another
process, and the pytest plugin offers the ``hub_emulator`` fixture. Importing this package is cheap:
the classes, and with them the HTTP stack, load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_spaces.emulator.client import EmulatorClient
    from airflow_provider_spaces.emulator.server import HubEmulator

__all__ = ["EmulatorClient", "HubEmulator"]


def __getattr__(name: str) -> Any:
    if name == "HubEmulator":
        from airflow_provider_spaces.emulator.server import HubEmulator

        return HubEmulator
    if name == "EmulatorClient":
        from airflow_provider_spaces.emulator.client import EmulatorClient

        return EmulatorClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
