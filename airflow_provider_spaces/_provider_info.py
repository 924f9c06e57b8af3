"""The provider's description for Airflow's providers manager, and the connection form it declares.

Kept apart from ``__init__`` so that Airflow, which calls ``get_provider_info`` while it starts,
pays for building this dict only when it asks for it. Nothing here imports Airflow or the hook:
the hook reads the form from this module (for Airflow 3.1, which asks the hook), and Airflow 3.2+
reads it from the provider info without importing the hook at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_spaces import __version__

INTEGRATION = "Hugging Face Spaces"
# Known shortcoming: Airflow warns "Connection schemes (type: huggingface_spaces) shall not contain
# '_'" whenever it turns such a connection into a URI (3.1 does so in every task that reads it; the
# connection test does so on every release). Harmless, since the URI reads back to the same type;
# only a type name without "_" would silence it, at the price of every saved connection.
CONNECTION_TYPE = "huggingface_spaces"
HOOK_CLASS = "airflow_provider_spaces.hooks.spaces.SpacesHook"


@dataclass(frozen=True)
class ExtraField:
    """One extra field of the connection form: a whole number of seconds, attempts or calls."""

    label: str
    description: str
    minimum: int


# The defaults quoted here are the Hub client's; a test keeps the two in step.
EXTRA_FIELDS: dict[str, ExtraField] = {
    "connect_timeout": ExtraField(
        "Connect timeout (seconds)",
        "Seconds to wait for a connection to the Hub. Empty: 10.",
        minimum=1,
    ),
    "read_timeout": ExtraField(
        "Read timeout (seconds)",
        "Seconds to wait for the Hub to answer one request. Empty: 30.",
        minimum=1,
    ),
    "max_retries": ExtraField(
        "Max retries",
        "How often a call that failed for a passing reason (rate limit, server error, lost "
        "connection) is sent again; 0 sends every call once. Empty: 4.",
        minimum=0,
    ),
    "max_retry_wait": ExtraField(
        "Max retry wait (seconds)",
        "Longest time one call may keep retrying, waits included; when the Hub asks to wait "
        "longer, the call fails at once. Empty: 120.",
        minimum=0,
    ),
    "rate_limit_quota": ExtraField(
        "Rate limit: calls per window",
        "How many Hub calls the token may make per window; waits on many Spaces share them. "
        "The Hub's own figure replaces it once an answer announces one. Empty: 1000.",
        minimum=1,
    ),
    "rate_limit_window": ExtraField(
        "Rate limit: window (seconds)",
        "The window in which those calls are counted; the Hub's own figure replaces it once an "
        "answer announces one. Empty: 300.",
        minimum=1,
    ),
}

# Standard fields: the token lives in the password (masked by Airflow), the endpoint in the host.
HIDDEN_FIELDS = ["schema", "port", "login"]
RELABELING = {"host": "Hub endpoint", "password": "Hugging Face token"}
PLACEHOLDERS = {"host": "https://huggingface.co", "password": "hf_... (a token with write access)"}


def conn_fields() -> dict[str, Any]:
    """Return the extra fields in the provider-info form Airflow 3.2+ reads (``conn-fields``)."""
    return {
        name: {
            "label": field.label,
            "description": field.description,
            "schema": {"type": ["integer", "null"], "minimum": field.minimum},
        }
        for name, field in EXTRA_FIELDS.items()
    }


def provider_info() -> dict[str, Any]:
    """Return the provider info dict, checked against Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-spaces",
        "name": INTEGRATION,
        "description": "Manage Hugging Face Spaces from Airflow: hardware, pause and restart, sleep time, "
        "secrets and variables, duplicates, and waits on a Space's stage.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://huggingface.co/docs/hub/spaces",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_spaces.hooks.spaces"]}
        ],
        # Operators, sensors and triggers are listed by module name only; Airflow imports none of
        # them while it discovers providers, so these entries may precede the modules.
        "operators": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_spaces.operators.spaces"]}
        ],
        "sensors": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_spaces.sensors.spaces"]}
        ],
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_spaces.triggers.spaces"]}
        ],
        # Airflow imports each listed link class when it discovers providers; the module is light.
        "extra-links": ["airflow_provider_spaces.links.spaces.SpaceLink"],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": INTEGRATION,
                "conn-fields": conn_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": list(HIDDEN_FIELDS),
                    "relabeling": dict(RELABELING),
                    "placeholders": dict(PLACEHOLDERS),
                },
            }
        ],
    }
