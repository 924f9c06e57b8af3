"""Find the Hugging Face token the way the Hugging Face tools do, without importing them.

Order: the ``HF_TOKEN`` environment variable, then the older ``HUGGING_FACE_HUB_TOKEN``, then the
token file ``$HF_TOKEN_PATH`` (by default ``$HF_HOME/token``, with ``HF_HOME`` defaulting to
``~/.cache/huggingface``). White space around a token is dropped; an empty one counts as none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["get_token", "token_path"]

log = logging.getLogger(__name__)

_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def token_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return where the Hugging Face tools keep the saved token."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_TOKEN_PATH")
    if explicit:
        return Path(explicit).expanduser()
    home = env.get("HF_HOME") or os.path.join("~", ".cache", "huggingface")
    return Path(home).expanduser() / "token"


def get_token(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the token from the environment or the token file, or None when there is none."""
    env = os.environ if environ is None else environ
    for name in _TOKEN_VARIABLES:
        token = (env.get(name) or "").strip()
        if token:
            log.debug("Using the Hugging Face token from $%s", name)
            return token

    path = token_path(env)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        # An unreadable file is treated as no token, as the Hugging Face tools do, but said aloud.
        log.warning("Could not read the Hugging Face token file %s: %s", path, type(error).__name__)
        return None
    if token:
        log.debug("Using the Hugging Face token from %s", path)
    return token or None
