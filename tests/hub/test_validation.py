"""Bad input is refused before any request, with an error naming the argument and what is allowed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_spaces.hub.errors import InvalidArgumentError
from airflow_provider_spaces.hub.validation import (
    suggest_flavor,
    validate_flag,
    validate_flavor,
    validate_key,
    validate_keys,
    validate_seconds,
    validate_sleep_time,
    validate_space_id,
    validate_stages,
    validate_storage_tier,
    validate_values,
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


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), (0.5, 0.5), (timedelta(minutes=2), 120.0)],
    ids=["int", "float", "timedelta"],
)
def test_positive_durations_pass_as_seconds(value: Any, seconds: float) -> None:
    assert validate_seconds(value, argument="timeout") == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be more than 0 seconds, not 0"),
        (-5, "must be more than 0 seconds, not -5"),
        (timedelta(0), "must be more than 0 seconds"),
        (float("nan"), "must be more than 0 seconds, not nan"),
        ("60", "must be a number of seconds or a timedelta, not '60'"),
        (True, "must be a number of seconds or a timedelta, not True"),
    ],
    ids=["zero", "negative", "zero-timedelta", "nan", "string", "bool"],
)
def test_bad_durations_are_refused(value: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid poll_interval: {message}"):
        validate_seconds(value, argument="poll_interval")


def test_flags_must_be_booleans() -> None:
    assert validate_flag(False, argument="wait_for_running") is False
    with pytest.raises(
        InvalidArgumentError, match="^Invalid wait_for_running: must be True or False, not 'yes'"
    ):
        validate_flag("yes", argument="wait_for_running")


def test_values_map_valid_keys_to_strings() -> None:
    assert validate_values({"HF_MODEL": "gpt2", "EMPTY": ""}, argument="variables") == {
        "HF_MODEL": "gpt2",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["A=1"], "^Invalid secrets: must be a mapping of key to value, not a list"),
        ({"": "hunter2"}, "^Invalid secrets key: must be a non-empty string"),
        ({"1ABC": "hunter2"}, "^Invalid secrets key: '1ABC' is not allowed"),
        ({"API": 12345}, "^Invalid secrets: the value of API must be a string, not a int"),
    ],
    ids=["not-a-mapping", "empty-key", "key-starting-with-a-digit", "value-not-a-string"],
)
def test_bad_values_are_refused_without_quoting_any_value(values: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        validate_values(values, argument="secrets")

    assert "hunter2" not in str(caught.value)
    assert "12345" not in str(caught.value)


def test_keys_come_as_a_collection() -> None:
    assert validate_keys(("OLD", "STALE"), argument="delete") == ["OLD", "STALE"]
    with pytest.raises(
        InvalidArgumentError,
        match=r"^Invalid delete: must be a list of keys such as \['HF_MODEL'\], not 'OLD'",
    ):
        validate_keys("OLD", argument="delete")
    with pytest.raises(InvalidArgumentError, match="^Invalid delete key: must be a non-empty string"):
        validate_keys([""], argument="delete")


def test_stages_may_be_unknown_but_must_be_upper_case_names() -> None:
    assert validate_stages(["RUNNING", "WARMING_UP"]) == frozenset({"RUNNING", "WARMING_UP"})


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("RUNNING", r"must be a list of stages such as \['RUNNING'\], not 'RUNNING'"),
        ([], "must name at least one stage"),
        (["running"], "holds 'running'; stages are upper case: did you mean RUNNING"),
        ([""], "holds '', which is not a stage name"),
        ([3], "holds 3, which is not a stage name"),
    ],
    ids=["a-single-string", "empty", "lower-case", "empty-name", "not-a-string"],
)
def test_bad_stages_are_refused(stages: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^Invalid target_stages: {message}"):
        validate_stages(stages)
