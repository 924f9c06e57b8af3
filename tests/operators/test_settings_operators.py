"""Secrets and variables against the emulated Hub: secrets always sent (their values cannot be read
back) and never shown, variables sent only when they differ, deletes only for keys that exist."""

from __future__ import annotations

import uuid

import pytest
from airflow.sdk._shared.secrets_masker import redact

from airflow_provider_spaces._compat import AirflowFailException
from airflow_provider_spaces.operators.spaces import (
    SpaceDuplicateOperator,
    SpaceSecretsOperator,
    SpaceVariablesOperator,
)

SPACE = "demo/app"
VALUE = "sk-live-7f3a9c1e5b2d4f60"


def run(task):
    """Run a task's ``execute`` as a worker would, outside a DAG run."""
    return task.execute({})


def test_secrets_are_always_sent_and_only_present_keys_deleted(emulated_hub, writes, airflow_logs):
    emulated_hub.add_space(SPACE, secrets={"API_KEY": "old-value", "STALE": "x"})

    result = run(
        SpaceSecretsOperator(
            task_id="secrets", space_id=SPACE, secrets={"API_KEY": VALUE}, delete=["STALE", "NEVER_SET"]
        )
    )

    assert writes() == [("POST", "secrets"), ("DELETE", "secrets")]
    assert result["changes"] == {"set": ["API_KEY"], "deleted": ["STALE"], "already_absent": ["NEVER_SET"]}
    assert result["url"] == f"{emulated_hub.url}/spaces/{SPACE}"
    assert emulated_hub.hub.spaces[SPACE].secrets["API_KEY"]["value"] == VALUE
    assert "Space demo/app: secret API_KEY set" in airflow_logs.text
    assert VALUE not in airflow_logs.text
    assert VALUE not in repr(result)


def test_a_hub_refusal_that_echoes_a_secret_value_never_shows_it(emulated_hub):
    emulated_hub.add_space(SPACE)
    emulated_hub.add_fault(
        "refuse", space_id=SPACE, action="secrets", status=400, message=f"value {VALUE} is too long"
    )

    with pytest.raises(AirflowFailException, match=r"value \*\*\* is too long") as caught:
        run(SpaceSecretsOperator(task_id="secrets", space_id=SPACE, secrets={"API_KEY": VALUE}))

    shown = [str(caught.value), repr(caught.value), str(caught.value.__cause__)]
    assert all(VALUE not in text for text in shown)


def test_variables_are_sent_only_when_they_differ(emulated_hub, writes):
    emulated_hub.add_space(SPACE, variables={"MODEL": "gpt2", "BATCH": "8", "OLD": "1"})

    result = run(
        SpaceVariablesOperator(
            task_id="variables",
            space_id=SPACE,
            variables={"MODEL": "gpt2", "BATCH": "16", "NEW": "yes"},
            delete=["OLD", "MISSING"],
        )
    )

    assert writes() == [("POST", "variables"), ("POST", "variables"), ("DELETE", "variables")]
    assert result["changes"] == {
        "set": ["BATCH", "NEW"],
        "unchanged": ["MODEL"],
        "deleted": ["OLD"],
        "already_absent": ["MISSING"],
    }
    assert {key: entry["value"] for key, entry in emulated_hub.hub.spaces[SPACE].variables.items()} == {
        "MODEL": "gpt2",
        "BATCH": "16",
        "NEW": "yes",
    }


def test_variables_already_in_place_send_nothing(emulated_hub, writes):
    emulated_hub.add_space(SPACE, variables={"MODEL": "gpt2"})

    result = run(SpaceVariablesOperator(task_id="variables", space_id=SPACE, variables={"MODEL": "gpt2"}))

    assert writes() == []
    assert result["changes"]["unchanged"] == ["MODEL"]


def test_secrets_of_a_space_the_token_cannot_see_fail_as_not_found(emulated_hub):
    with pytest.raises(
        AirflowFailException, match=r"HTTP 404 Not Found \(RepoNotFound\): Repository not found"
    ):
        run(SpaceSecretsOperator(task_id="secrets", space_id="nobody/nothing", secrets={"A": VALUE}))


@pytest.mark.parametrize(
    "operator", [SpaceSecretsOperator, SpaceDuplicateOperator], ids=["secrets", "duplicate"]
)
def test_rendering_registers_the_secret_values_with_the_masker(operator):
    value = f"sk-rendered-{uuid.uuid4().hex}"
    extra = {"target_space_id": "demo/copy"} if operator is SpaceDuplicateOperator else {}
    task = operator(task_id="t", space_id=SPACE, secrets={"API_KEY": "{{ params.value }}"}, **extra)
    assert redact(f"sent {value}") == f"sent {value}"

    task.render_template_fields({"params": {"value": value}})

    assert task.secrets == {"API_KEY": value}
    assert redact(f"sent {value}") == "sent ***"
