"""Checks of user input, run before any request so that bad input costs no call and no quota.

Each check raises :class:`InvalidArgumentError` naming the argument and saying what is allowed.
They mirror the rules the Hub applies where those are known, and stay lenient where the Hub is the
judge: a flavor is never refused only because the built-in catalog lacks it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from airflow_provider_spaces.hub.catalog import KNOWN_FLAVORS
from airflow_provider_spaces.hub.errors import InvalidArgumentError
from airflow_provider_spaces.hub.models import SpaceStage, is_known_stage

__all__ = [
    "MAX_NAME_LENGTH",
    "suggest_flavor",
    "validate_flag",
    "validate_flavor",
    "validate_key",
    "validate_keys",
    "validate_seconds",
    "validate_sleep_time",
    "validate_space_id",
    "validate_stages",
    "validate_storage_tier",
    "validate_values",
    "validate_visibility",
]

MAX_NAME_LENGTH = 96
NEVER_SLEEP = -1
VISIBILITIES = ("public", "private", "protected")

# The longest wait or interval taken: past it a deadline overflows the calendar, and no Space
# build or window lasts that long. A year, so that "wait for ever" is said with a clear error.
MAX_WAIT_SECONDS = 366 * 24 * 3600
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


def validate_seconds(value: Any, *, argument: str) -> float:
    """Return ``value`` in seconds when it is a number or ``timedelta`` above 0 and up to 366 days."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(
            argument, f"must be a number of seconds or a timedelta, not {_shown(value)}"
        )
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidArgumentError(argument, f"must be more than 0 seconds, not {_shown(value)}")
    if seconds > MAX_WAIT_SECONDS:
        raise InvalidArgumentError(
            argument, f"must be at most {MAX_WAIT_SECONDS} seconds (366 days), not {_shown(value)}"
        )
    return seconds


def validate_flag(value: Any, *, argument: str) -> bool:
    """Return ``value`` when it is True or False (a truthy string is a mistake, not a yes)."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(argument, f"must be True or False, not {_shown(value)}")
    return value


def validate_values(values: Any, *, argument: str) -> dict[str, str]:
    """Return ``values`` as a dict when it maps valid keys to strings.

    Used for secrets too, so no message ever quotes a value: only keys and types are named.
    """
    if not isinstance(values, Mapping):
        raise InvalidArgumentError(
            argument, f"must be a mapping of key to value, not a {type(values).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in values.items():
        validate_key(key, argument=f"{argument} key")
        if not isinstance(value, str):
            raise InvalidArgumentError(
                argument, f"the value of {key} must be a string, not a {type(value).__name__}"
            )
        checked[key] = value
    return checked


def validate_keys(keys: Any, *, argument: str) -> list[str]:
    """Return ``keys`` as a list when it is a collection (list, tuple, set) of valid keys."""
    if isinstance(keys, (str, bytes)) or isinstance(keys, Mapping) or not isinstance(keys, Iterable):
        raise InvalidArgumentError(
            argument, f"must be a list of keys such as ['HF_MODEL'], not {_shown(keys)}"
        )
    return [validate_key(key, argument=f"{argument} key") for key in keys]


def validate_stages(stages: Any, *, argument: str = "target_stages") -> frozenset[str]:
    """Return ``stages`` as a set when it is a non-empty collection of stage names.

    Stages this package does not know pass (the Hub adds stages); only a known stage in the wrong
    case is refused, since it could never match what the Hub sends.
    """
    if isinstance(stages, (str, bytes)) or isinstance(stages, Mapping) or not isinstance(stages, Iterable):
        raise InvalidArgumentError(
            argument, f"must be a list of stages such as ['RUNNING'], not {_shown(stages)}"
        )
    names = list(stages)
    if not names:
        raise InvalidArgumentError(argument, "must name at least one stage, such as 'RUNNING'")
    for stage in names:
        if not isinstance(stage, str) or not _FLAVOR_PATTERN.fullmatch(stage):
            raise InvalidArgumentError(argument, f"holds {_shown(stage)}, which is not a stage name")
        if not is_known_stage(stage) and is_known_stage(stage.upper()):
            raise InvalidArgumentError(
                argument,
                f"holds {stage!r}; stages are upper case: did you mean {SpaceStage(stage.upper())!s}?",
            )
    return frozenset(str(stage) for stage in names)
