"""Bad input is refused before any request, with an error naming the argument and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spaces.hub.errors import InvalidArgumentError
from airflow_provider_spaces.hub.validation import (
    suggest_flavor,
    validate_flavor,
    validate_key,
    validate_sleep_time,
    validate_space_id,
    validate_storage_tier,
    validate_visibility,
)


@pytest.mark.parametrize(
    "space_id",
    ["demo/app", "Demo-Org/My_App.v2", "a/b", "user_1/x" + "y" * 95, "_private/_app"],
    ids=["simple", "mixed-characters", "shortest", "longest-name", "leading-underscore"],
)
def test_well_formed_space_ids_pass(space_id: str) -> None:
    assert validate_space_id(space_id) == space_id


@pytest.mark.parametrize(
    ("space_id", "message"),
    [
        ("app", "is not of the form 'namespace/name'"),
        ("a/b/c", "is not of the form 'namespace/name'"),
        ("/app", "is not of the form 'namespace/name'"),
        ("demo/", "is not of the form 'namespace/name'"),
        ("", "is not of the form 'namespace/name'"),
        ("demo/my app", "the name may only use letters, digits, '-', '_' and '.'"),
        ("démo/app", "the namespace may only use letters"),
        ("demo/app?x=1", "the name may only use letters"),
        ("demo/-app", "the name must not start or end with '-' or '.'"),
        ("demo/app.", "the name must not start or end with '-' or '.'"),
        (".demo/app", "the namespace must not start or end"),
        ("demo/my--app", "the name must not contain '--' or '..'"),
        ("demo/my..app", "the name must not contain '--' or '..'"),
        ("demo/" + "x" * 97, "the name is longer than 96 characters"),
        ("demo/app.git", "the name must not end with '.git'"),
        (None, "must be a string 'namespace/name', not None"),
        (42, "must be a string 'namespace/name', not 42"),
    ],
    ids=[
        "no-namespace",
        "three-parts",
        "empty-namespace",
        "empty-name",
        "empty",
        "space",
        "non-ascii",
        "query",
        "leading-dash",
        "trailing-dot",
        "namespace-leading-dot",
        "double-dash",
        "double-dot",
        "too-long",
        "dot-git",
        "none",
        "int",
    ],
)
def test_malformed_space_ids_are_refused_naming_the_argument(space_id: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid space_id: .*{_escaped(message)}") as caught:
        validate_space_id(space_id)

    assert caught.value.argument == "space_id"


def test_the_argument_name_is_the_callers() -> None:
    with pytest.raises(InvalidArgumentError, match="^Invalid to_id:") as caught:
        validate_space_id("nope", argument="to_id")

    assert caught.value.argument == "to_id"


@pytest.mark.parametrize(
    "sleep_time", [-1, 1, 300, 172800], ids=["never", "one-second", "five-minutes", "two-days"]
)
def test_valid_sleep_times_pass(sleep_time: int) -> None:
    assert validate_sleep_time(sleep_time) == sleep_time


@pytest.mark.parametrize(
    ("sleep_time", "message"),
    [
        (0, "must be a number of seconds > 0, or -1 to never sleep, not 0"),
        (-2, "not -2"),
        (True, "must be an int of seconds .* not True"),
        (1.5, "not 1.5"),
        ("300", "not '300'"),
        (None, "not None"),
    ],
    ids=["zero", "negative", "bool", "float", "string", "none"],
)
def test_bad_sleep_times_are_refused(sleep_time: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid sleep_time: .*{message}"):
        validate_sleep_time(sleep_time)


@pytest.mark.parametrize(
    "key", ["HF_TOKEN", "api_key", "_X", "A1"], ids=["upper", "lower", "underscore", "digit"]
)
def test_keys_that_make_environment_variables_pass(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string, not None"),
        ("MY-KEY", "is not allowed: use letters, digits and '_', not starting with a digit"),
        ("1KEY", "not starting with a digit"),
        ("MY KEY", "is not allowed"),
        ("KEY=1", "is not allowed"),
    ],
    ids=["empty", "none", "dash", "leading-digit", "space", "equals"],
)
def test_bad_keys_are_refused_saying_what_is_allowed(key: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid key: .*{message}"):
        validate_key(key)


@pytest.mark.parametrize(
    "flavor", ["a10g-large", "cpu-basic", "h200x8", "rtx-pro-6000"], ids=["known", "free", "unknown", "newer"]
)
def test_any_plausible_flavor_passes_even_when_unknown(flavor: str) -> None:
    assert validate_flavor(flavor) == flavor


@pytest.mark.parametrize(
    ("flavor", "message"),
    [
        ("", "must be a non-empty flavor name"),
        ("   ", "must be a non-empty flavor name"),
        (None, "must be a non-empty flavor name, not None"),
        ("a10g large", r"contains white space\. Did you mean 'a10g-large'\?"),
    ],
    ids=["empty", "blank", "none", "white-space"],
)
def test_bad_flavors_are_refused(flavor: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid hardware: .*{message}"):
        validate_flavor(flavor)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("a10g-lrge", "a10g-large"),
        ("T4-Small", "t4-small"),
        ("cpu_basic", "cpu-basic"),
        ("quantum-9000", None),
    ],
    ids=["missing-letter", "case", "underscore", "nothing-close"],
)
def test_a_mistyped_flavor_gets_the_closest_known_one(typo: str, suggestion: str | None) -> None:
    assert suggest_flavor(typo) == suggestion


@pytest.mark.parametrize(("tier", "valid"), [("small", True), ("xl", True), ("", False), (None, False)])
def test_storage_tiers_must_be_named(tier: Any, valid: bool) -> None:
    if valid:
        assert validate_storage_tier(tier) == tier
    else:
        with pytest.raises(InvalidArgumentError, match="^Invalid storage: must be a storage tier"):
            validate_storage_tier(tier)


def test_visibility_must_be_one_the_hub_knows() -> None:
    assert validate_visibility("protected") == "protected"
    with pytest.raises(
        InvalidArgumentError, match="^Invalid visibility: must be one of public, private, protected"
    ):
        validate_visibility("secret")


def _escaped(message: str) -> str:
    return message.replace(".", r"\.").replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")
