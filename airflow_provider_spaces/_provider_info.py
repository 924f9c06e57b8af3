"""The provider's description for Airflow's providers manager.

Kept apart from ``__init__`` so that Airflow, which calls ``get_provider_info`` while it starts,
pays for building this dict only when it asks for it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_spaces import __version__

CONNECTION_TYPE = "huggingface_spaces"
HOOK_CLASS = "airflow_provider_spaces.hooks.spaces.SpacesHook"


def provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-spaces",
        "name": "Hugging Face Spaces",
        "description": "Manage Hugging Face Spaces from Airflow: hardware, pause and restart, sleep time, "
        "secrets and variables, duplicates, and waits on a Space's stage.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Hugging Face Spaces",
                "external-doc-url": "https://huggingface.co/docs/hub/spaces",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Hugging Face Spaces",
                "python-modules": ["airflow_provider_spaces.hooks.spaces"],
            }
        ],
        "operators": [
            {
                "integration-name": "Hugging Face Spaces",
                "python-modules": ["airflow_provider_spaces.operators.spaces"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Hugging Face Spaces",
                "python-modules": ["airflow_provider_spaces.sensors.spaces"],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Hugging Face Spaces",
            }
        ],
    }
