"""Duplicating a Space against the emulated Hub: the copy with its own settings and secrets, a wait
until it runs on its flavor, and no second copy when the task runs again."""

from __future__ import annotations

from airflow_provider_spaces.operators.spaces import SpaceDuplicateOperator

SOURCE = "demo/app"
TARGET = "demo/app-staging"
VALUE = "sk-staging-58e1d0a3c9"


def run(task):
    """Run a task's ``execute`` as a worker would, outside a DAG run."""
    return task.execute({})


def duplicate(**options) -> SpaceDuplicateOperator:
    return SpaceDuplicateOperator(
        task_id="duplicate", space_id=SOURCE, target_space_id=TARGET, poll_interval=0.05, **options
    )


def test_duplicate_makes_the_copy_with_its_settings_and_waits_until_it_runs(
    emulated_hub, writes, airflow_logs
):
    emulated_hub.add_space(SOURCE, variables={"MODEL": "gpt2"})

    task = duplicate(
        hardware="t4-small",
        sleep_time=900,
        visibility="private",
        secrets={"API_KEY": VALUE},
        variables={"STAGE": "staging"},
    )
    result = run(task)

    assert (result["space_id"], result["stage"], result["hardware"]) == (TARGET, "RUNNING", "t4-small")
    assert result["sleep_time"] == 900
    assert writes(SOURCE) == [("POST", "duplicate")]
    copy = emulated_hub.hub.spaces[TARGET]
    assert copy.private
    assert copy.secrets["API_KEY"]["value"] == VALUE
    assert {key: entry["value"] for key, entry in copy.variables.items()} == {
        "MODEL": "gpt2",
        "STAGE": "staging",
    }
    assert task.space_url == f"{emulated_hub.url}/spaces/{TARGET}"
    assert "Duplicating Space demo/app to demo/app-staging (hardware t4-small, 1 secrets, 1 variables)" in (
        airflow_logs.text
    )
    assert VALUE not in airflow_logs.text


def test_duplicate_sends_nothing_when_the_copy_already_exists(emulated_hub, writes, airflow_logs):
    emulated_hub.add_space(SOURCE)
    emulated_hub.add_space(TARGET, hardware="t4-small")

    result = run(duplicate(hardware="t4-small"))

    assert result["space_id"] == TARGET
    assert writes() == []
    assert "Space demo/app-staging already exists (RUNNING on t4-small); not duplicating" in airflow_logs.text


def test_duplicate_without_hardware_waits_for_the_copy_on_cpu_basic(emulated_hub):
    emulated_hub.add_space(SOURCE, hardware="t4-small")

    result = run(duplicate())

    assert (result["stage"], result["hardware"]) == ("RUNNING", "cpu-basic")
