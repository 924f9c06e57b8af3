"""Checks of user input, run before any request so that bad input costs no call and no quota.

Each check raises :class:`InvalidArgumentError` naming the argument and saying what is allowed.
They mirror the rules the Hub applies where those are known, and stay lenient where the Hub is the
judge: a flavor is never refused only because the built-in catalog lacks it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from airflow_provider_spaces.hub.catalog import KNOWN_FLAVORS
from airflow_provider_spaces.hub.errors import InvalidArgumentError

__all__ = [
    "MAX_NAME_LENGTH",
    "suggest_flavor",
    "validate_flavor",
    "validate_key",
    "validate_sleep_time",
    "validate_space_id",
    "validate_storage_tier",
    "validate_visibility",
]

MAX_NAME_LENGTH = 96
NEVER_SLEEP = -1
VISIBILITIES = ("public", "private", "protected")

_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")
# Secrets and variables become environment variables of the Space's container, so their keys
# follow the portable rule for environment variable names. The Hub's own rule is not published;
# if it turns out to accept more (or less), this pattern is the one place to change.
_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLAVOR_PATTERN = re.compile(r"\S+")
_SHOWN_CHARACTERS = 100


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else text[:_SHOWN_CHARACTERS] + "..."


def validate_space_id(space_id: Any, *, argument: str = "space_id") -> str:
    """Return ``space_id`` when it is a well-formed ``namespace/name``; raise otherwise.

    Both parts use letters, digits, ``-``, ``_`` and ``.``; neither starts or ends with ``-`` or
    ``.``, contains ``--`` or ``..``, or is longer than 96 characters; the name does not end in
    ``.git``.
    """
    if not isinstance(space_id, str):
        raise InvalidArgumentError(argument, f"must be a string 'namespace/name', not {_shown(space_id)}")
    parts = space_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidArgumentError(
            argument, f"{_shown(space_id)} is not of the form 'namespace/name' (for example 'demo/my-space')"
        )

    for label, part in zip(("namespace", "name"), parts, strict=True):
        problem = _name_problem(part)
        if problem:
            raise InvalidArgumentError(argument, f"{_shown(space_id)}: the {label} {problem}")
    if parts[1].endswith(".git"):
        raise InvalidArgumentError(argument, f"{_shown(space_id)}: the name must not end with '.git'")
    return space_id


def _name_problem(part: str) -> str | None:
    if not _NAME_CHARACTERS.fullmatch(part):
        return "may only use letters, digits, '-', '_' and '.'"
    if len(part) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if part[0] in "-." or part[-1] in "-.":
        return "must not start or end with '-' or '.'"
    if "--" in part or ".." in part:
        return "must not contain '--' or '..'"
    return None


def validate_sleep_time(sleep_time: Any, *, argument: str = "sleep_time") -> int:
    """Return ``sleep_time`` when it is a number of seconds > 0, or -1 for "never sleep"."""
    if isinstance(sleep_time, bool) or not isinstance(sleep_time, int):
        raise InvalidArgumentError(
            argument, f"must be an int of seconds (or -1 to never sleep), not {_shown(sleep_time)}"
        )
    if sleep_time != NEVER_SLEEP and sleep_time <= 0:
        raise InvalidArgumentError(
            argument, f"must be a number of seconds > 0, or -1 to never sleep, not {sleep_time}"
        )
    return sleep_time


def validate_key(key: Any, *, argument: str = "key") -> str:
    """Return ``key`` when it can name a secret or variable (an environment variable name)."""
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(argument, f"must be a non-empty string, not {_shown(key)}")
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidArgumentError(
            argument,
            f"{_shown(key)} is not allowed: use letters, digits and '_', not starting with a digit "
            "(it becomes an environment variable of the Space)",
        )
    return key


def suggest_flavor(flavor: str) -> str | None:
    """Return the known flavor closest to ``flavor``, or None when none is close."""
    matches = difflib.get_close_matches(flavor.strip().lower(), list(KNOWN_FLAVORS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def validate_flavor(flavor: Any, *, argument: str = "hardware") -> str:
    """Return ``flavor`` when it can be a flavor name; unknown flavors pass, the Hub decides."""
    if not isinstance(flavor, str) or not flavor.strip():
        raise InvalidArgumentError(argument, f"must be a non-empty flavor name, not {_shown(flavor)}")
    if not _FLAVOR_PATTERN.fullmatch(flavor):
        suggestion = suggest_flavor(flavor)
        hint = f"Did you mean {suggestion!r}?" if suggestion else None
        raise InvalidArgumentError(argument, f"{_shown(flavor)} contains white space", hint=hint)
    return flavor


def validate_storage_tier(tier: Any, *, argument: str = "storage") -> str:
    """Return ``tier`` when it is a non-empty tier name (``small``, ``medium``, ``large`` today)."""
    if not isinstance(tier, str) or not tier.strip():
        raise InvalidArgumentError(
            argument, f"must be a storage tier such as 'small', 'medium' or 'large', not {_shown(tier)}"
        )
    return tier


def validate_visibility(visibility: Any, *, argument: str = "visibility") -> str:
    """Return ``visibility`` when it is one the Hub knows: public, private or protected."""
    if visibility not in VISIBILITIES:
        raise InvalidArgumentError(
            argument, f"must be one of {', '.join(VISIBILITIES)}, not {_shown(visibility)}"
        )
    return str(visibility)
