"""Bad input fails the task when it starts, naming the argument, before any request reaches the Hub.

Arguments are checked in ``execute``, once templates are rendered, so the table builds each task
with the bad value and runs it against the emulated Hub, whose request log must stay empty.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_spaces._compat import AirflowFailException
from airflow_provider_spaces.operators.spaces import (
    SpaceDuplicateOperator,
    SpaceHardwareDowngradeOperator,
    SpaceHardwareUpgradeOperator,
    SpacePauseOperator,
    SpaceRestartOperator,
    SpaceSecretsOperator,
    SpaceSleepTimeOperator,
    SpaceVariablesOperator,
)
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

SPACE = "demo/app"
SECRET = "hunter2-never-shown"


def upgrade(**options: Any) -> SpaceHardwareUpgradeOperator:
    return SpaceHardwareUpgradeOperator(
        task_id="t", **{"space_id": SPACE, "hardware": "a10g-large", **options}
    )


def downgrade(**options: Any) -> SpaceHardwareDowngradeOperator:
    return SpaceHardwareDowngradeOperator(task_id="t", **{"space_id": SPACE, **options})


def secrets(**options: Any) -> SpaceSecretsOperator:
    return SpaceSecretsOperator(task_id="t", **{"space_id": SPACE, **options})


def variables(**options: Any) -> SpaceVariablesOperator:
    return SpaceVariablesOperator(task_id="t", **{"space_id": SPACE, **options})


def duplicate(**options: Any) -> SpaceDuplicateOperator:
    return SpaceDuplicateOperator(
        task_id="t", **{"space_id": SPACE, "target_space_id": "demo/copy", **options}
    )


def sensor(**options: Any) -> SpaceStageSensor:
    return SpaceStageSensor(task_id="t", **{"space_id": SPACE, **options})


CASES: list[tuple[Callable[[], Any], str]] = [
    (
        lambda: upgrade(space_id="not-a-space"),
        r"Invalid space_id: 'not-a-space' is not of the form 'namespace/name'",
    ),
    (lambda: upgrade(space_id=42), r"Invalid space_id: must be a string 'namespace/name', not 42"),
    (lambda: upgrade(hardware=""), r"Invalid hardware: must be a non-empty flavor name, not ''"),
    (lambda: upgrade(hardware="a10g large"), r"Invalid hardware: 'a10g large' contains white space"),
    (
        lambda: upgrade(sleep_time=-5),
        r"Invalid sleep_time: must be a number of seconds > 0, or -1 to never sleep",
    ),
    (lambda: upgrade(sleep_time=1.5), r"Invalid sleep_time: must be an int of seconds"),
    (lambda: upgrade(sleep_time="soon"), r"Invalid sleep_time: must be an int of seconds .* not 'soon'"),
    (lambda: upgrade(timeout=0), r"Invalid timeout: must be more than 0 seconds, not 0"),
    (lambda: upgrade(poll_interval=-1), r"Invalid poll_interval: must be more than 0 seconds, not -1"),
    (
        lambda: upgrade(timeout=datetime.timedelta.max, deferrable=True),
        r"Invalid timeout: must be at most 31622400 seconds \(366 days\)",
    ),
    (lambda: downgrade(timeout=1e15), r"Invalid timeout: must be at most 31622400 seconds"),
    (lambda: upgrade(wait_for_running="yes"), r"Invalid wait_for_running: must be True or False, not 'yes'"),
    (lambda: downgrade(hardware=None), r"Invalid hardware: must be a non-empty flavor name, not None"),
    (lambda: downgrade(fallback_to_pause="no"), r"Invalid fallback_to_pause: must be True or False"),
    (lambda: downgrade(timeout="15m"), r"Invalid timeout: must be a number of seconds or a timedelta"),
    (
        lambda: SpacePauseOperator(task_id="t", space_id="demo/my app"),
        r"Invalid space_id: .* may only use letters",
    ),
    (lambda: SpaceRestartOperator(task_id="t", space_id=SPACE, factory_reboot=1), r"Invalid factory_reboot"),
    (
        lambda: SpaceSleepTimeOperator(task_id="t", space_id=SPACE, sleep_time=None),
        r"Invalid sleep_time: .* not None",
    ),
    (
        lambda: SpaceSleepTimeOperator(task_id="t", space_id=SPACE, sleep_time=0),
        r"Invalid sleep_time: .* not 0",
    ),
    (
        lambda: secrets(secrets=["API_KEY=x"]),
        r"Invalid secrets: must be a mapping of key to value, not a list",
    ),
    (lambda: secrets(secrets={"": SECRET}), r"Invalid secrets key: must be a non-empty string"),
    (
        lambda: secrets(secrets={"API_KEY": 12345}),
        r"Invalid secrets: the value of API_KEY must be a string, not a int",
    ),
    (lambda: secrets(), r"Invalid secrets: nothing to do: give secrets to set or keys to delete"),
    (
        lambda: secrets(delete="OLD"),
        r"Invalid delete: must be a list of keys such as \['HF_MODEL'\], not 'OLD'",
    ),
    (lambda: secrets(secrets={"A": SECRET}, delete=["A"]), r"Invalid delete: A also in secrets"),
    (lambda: variables(variables={"1BAD": "x"}), r"Invalid variables key: '1BAD' is not allowed"),
    (lambda: variables(delete=[""]), r"Invalid delete key: must be a non-empty string"),
    (lambda: duplicate(target_space_id=SPACE), r"Invalid target_space_id: must differ from space_id"),
    (lambda: duplicate(target_space_id="staging"), r"Invalid target_space_id: 'staging' is not of the form"),
    (
        lambda: duplicate(visibility="secret"),
        r"Invalid visibility: must be one of public, private, protected",
    ),
    (lambda: duplicate(sleep_time=600), r"Invalid sleep_time: can only be set on paid hardware"),
    (
        lambda: duplicate(secrets={"A": None}),
        r"Invalid secrets: the value of A must be a string, not a NoneType",
    ),
    (lambda: sensor(space_id="app"), r"Invalid space_id: 'app' is not of the form"),
    (lambda: sensor(target_stages=[]), r"Invalid target_stages: must name at least one stage"),
    (lambda: sensor(target_stages="RUNNING"), r"Invalid target_stages: must be a list of stages"),
    (lambda: sensor(target_stages=["running"]), r"Invalid target_stages: .* did you mean RUNNING"),
    (lambda: sensor(hardware=""), r"Invalid hardware: must be a non-empty flavor name"),
]
IDS = [
    "upgrade-malformed-space-id",
    "upgrade-space-id-not-a-string",
    "upgrade-empty-flavor",
    "upgrade-flavor-with-space",
    "upgrade-negative-sleep-time",
    "upgrade-fractional-sleep-time",
    "upgrade-sleep-time-not-a-number",
    "upgrade-zero-timeout",
    "upgrade-negative-poll-interval",
    "upgrade-deferred-timeout-for-ever",
    "downgrade-timeout-beyond-the-calendar",
    "upgrade-wait-flag-not-a-bool",
    "downgrade-no-flavor",
    "downgrade-fallback-flag-not-a-bool",
    "downgrade-timeout-as-text",
    "pause-space-id-with-a-blank",
    "restart-reboot-flag-not-a-bool",
    "sleep-time-missing",
    "sleep-time-zero",
    "secrets-not-a-mapping",
    "secrets-empty-key",
    "secrets-value-not-a-string",
    "secrets-nothing-to-do",
    "secrets-delete-a-bare-string",
    "secrets-set-and-delete-one-key",
    "variables-key-starting-with-a-digit",
    "variables-empty-key-to-delete",
    "duplicate-target-equal-to-source",
    "duplicate-malformed-target",
    "duplicate-unknown-visibility",
    "duplicate-sleep-time-on-free-hardware",
    "duplicate-secret-without-value",
    "sensor-malformed-space-id",
    "sensor-no-target-stage",
    "sensor-stages-as-a-string",
    "sensor-stage-in-lower-case",
    "sensor-empty-flavor",
]


@pytest.mark.parametrize(("make", "message"), CASES, ids=IDS)
def test_bad_input_fails_naming_the_argument_before_any_request(emulated_hub, make, message):
    emulated_hub.add_space(SPACE)
    task = make()

    with pytest.raises(AirflowFailException, match=message) as caught:
        task.execute({})

    assert emulated_hub.request_log() == []
    assert SECRET not in str(caught.value)
