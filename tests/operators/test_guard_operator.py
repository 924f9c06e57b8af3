"""How the guard judges one Space from its runtime and its lease, and the arguments it accepts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_spaces.guard import make_space_guard_dag
from airflow_provider_spaces.hub.errors import InvalidArgumentError
from airflow_provider_spaces.hub.models import SpaceRuntime
from airflow_provider_spaces.leases import Lease
from airflow_provider_spaces.operators.guard import Verdict, assess

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=timezone.utc)


def runtime(stage: str, current: str | None, requested: str | None) -> SpaceRuntime:
    payload = {"stage": stage, "hardware": {"current": current, "requested": requested}}
    return SpaceRuntime.from_payload("demo/app", payload, endpoint="http://127.0.0.1:9")


def lease(*, expired: bool) -> Lease:
    taken = NOW - timedelta(hours=3 if expired else 1)
    return Lease.take(
        "demo/app",
        "a10g-large",
        dag_id="window",
        run_id="run_1",
        task_id="take_gpu_lease",
        max_duration=timedelta(hours=2),
        grace=timedelta(minutes=15),
        now=taken,
    )


@pytest.mark.parametrize(
    ("space", "held", "verdict"),
    [
        (runtime("RUNNING", "a10g-large", "a10g-large"), None, Verdict.UNLEASED),
        (runtime("RUNNING", "a10g-large", "a10g-large"), False, Verdict.LEASED),
        (runtime("RUNNING", "a10g-large", "a10g-large"), True, Verdict.EXPIRED),
        (runtime("BUILDING", "cpu-basic", "a10g-large"), True, Verdict.EXPIRED),
        (runtime("SLEEPING", None, "a10g-large"), True, Verdict.EXPIRED),
        (runtime("PAUSED", None, "a10g-large"), True, Verdict.STALE),
        (runtime("BUILD_ERROR", None, "a10g-large"), None, Verdict.FREE),
        (runtime("RUNNING", "cpu-basic", "cpu-basic"), None, Verdict.FREE),
        (runtime("RUNNING", "cpu-basic", "cpu-basic"), True, Verdict.STALE),
        (runtime("RUNNING", "b200x8", "b200x8"), None, Verdict.UNLEASED),
    ],
    ids=[
        "gpu-without-lease",
        "gpu-under-lease",
        "gpu-past-its-lease",
        "building-towards-the-gpu-past-its-lease",
        "asleep-on-the-gpu-past-its-lease",
        "paused-past-its-lease",
        "failed-build-without-lease",
        "free-without-lease",
        "free-past-its-lease",
        "unknown-flavor-counts-as-paid",
    ],
)
def test_the_guard_judges_a_space_by_what_it_may_cost_and_who_holds_it(space, held, verdict):
    given = None if held is None else lease(expired=held)

    assert assess(space, given, NOW) is verdict


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"policy": "delete"}, "policy: must be one of downgrade, pause, report, not 'delete'"),
        ({"spaces": ["no-namespace"]}, "spaces"),
        ({"dry_run": "yes"}, "dry_run: must be True or False"),
    ],
    ids=["unknown-policy", "malformed-space-id", "dry-run-not-a-flag"],
)
def test_a_guard_with_bad_arguments_is_refused_when_the_dag_is_made(options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make_space_guard_dag("bad_guard", **options)
