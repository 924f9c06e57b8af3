"""Finding the token where the Hugging Face tools keep it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_spaces.hub.auth import get_token, token_path


def write_token(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_hf_token_comes_first(tmp_path: Path) -> None:
    write_token(tmp_path / "token", "from-file")
    env = {"HF_TOKEN": "hf_env", "HUGGING_FACE_HUB_TOKEN": "hf_legacy", "HF_HOME": str(tmp_path)}

    assert get_token(env) == "hf_env"


def test_the_legacy_variable_comes_second() -> None:
    assert get_token({"HUGGING_FACE_HUB_TOKEN": " hf_legacy\n"}) == "hf_legacy"


def test_an_empty_variable_counts_as_none(tmp_path: Path) -> None:
    write_token(tmp_path / "token", "hf_file\n")

    assert get_token({"HF_TOKEN": "  ", "HUGGING_FACE_HUB_TOKEN": "", "HF_HOME": str(tmp_path)}) == "hf_file"


def test_the_token_file_under_hf_home_is_read_and_stripped(tmp_path: Path) -> None:
    write_token(tmp_path / "token", "\n  hf_file  \n")

    assert get_token({"HF_HOME": str(tmp_path)}) == "hf_file"


def test_hf_token_path_overrides_hf_home(tmp_path: Path) -> None:
    write_token(tmp_path / "home" / "token", "hf_home")
    explicit = write_token(tmp_path / "elsewhere" / "my-token", "hf_explicit")

    assert get_token({"HF_HOME": str(tmp_path / "home"), "HF_TOKEN_PATH": str(explicit)}) == "hf_explicit"


def test_hf_home_defaults_to_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_token(tmp_path / ".cache" / "huggingface" / "token", "hf_default_home")

    assert token_path({}) == tmp_path / ".cache" / "huggingface" / "token"
    assert get_token({}) == "hf_default_home"


@pytest.mark.parametrize("content", ["", " \n\t"], ids=["empty", "white-space"])
def test_an_empty_token_file_means_no_token(tmp_path: Path, content: str) -> None:
    write_token(tmp_path / "token", content)

    assert get_token({"HF_HOME": str(tmp_path)}) is None


def test_no_token_anywhere_is_none(tmp_path: Path) -> None:
    assert get_token({"HF_HOME": str(tmp_path / "missing")}) is None


def test_an_unreadable_token_file_is_none_and_warned_about_without_its_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "token").mkdir()  # a directory where the file should be

    with caplog.at_level(logging.DEBUG):
        assert get_token({"HF_HOME": str(tmp_path)}) is None

    assert "Could not read the Hugging Face token file" in caplog.text


def test_the_token_itself_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_token(tmp_path / "token", "hf_never_logged_value")

    with caplog.at_level(logging.DEBUG):
        get_token({"HF_HOME": str(tmp_path)})
        get_token({"HF_TOKEN": "hf_never_logged_either"})

    assert "hf_never_logged" not in caplog.text
    assert "Using the Hugging Face token from" in caplog.text


def test_the_process_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_process")

    assert get_token() == "hf_from_process"
