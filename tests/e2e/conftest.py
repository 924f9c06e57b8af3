"""What the example DAG tests share: loading a DAG file as a deployment parses it."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


@pytest.fixture
def load_example(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Return a function loading ``dags_examples/<file_name>`` afresh, with settings in the environment.

    Each load is a new module (its constants are read at import, as the DAG processor reads
    them), and the settings are undone when the test ends.
    """

    def load(file_name: str, **settings: str) -> ModuleType:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        path = EXAMPLES / file_name
        spec = importlib.util.spec_from_file_location(f"{path.stem}_{uuid.uuid4().hex}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
