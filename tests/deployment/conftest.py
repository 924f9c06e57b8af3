"""What the deployment tests share: Airflow's components started as processes by ``AirflowStack``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_airflow_stack() -> ModuleType:
    """Load ``scripts/airflow_stack.py``, which is a script of the repository, not a package module."""
    spec = importlib.util.spec_from_file_location("airflow_stack", REPO_ROOT / "scripts" / "airflow_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclass looks itself up in sys.modules while being defined.
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def airflow_stack() -> ModuleType:
    """Return the ``scripts/airflow_stack.py`` module (``AirflowStack``, ``free_port``)."""
    return load_airflow_stack()
