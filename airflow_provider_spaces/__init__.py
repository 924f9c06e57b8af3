"""Run Hugging Face Spaces from Apache Airflow: rent GPUs only while a pipeline needs them.

Importing this package must stay cheap: DAG files import the operators on every parse, so nothing
here (nor in the operator, sensor and link modules) imports an HTTP stack or the emulator at the
top level.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_spaces._provider_info import provider_info

    return provider_info()
