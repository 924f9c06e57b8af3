"""Leases: taking, refusing, renewing, releasing and listing them, on a store kept in memory.

The tasks use Airflow Variables through the Task SDK, which only answers inside a running task;
the window and guard tests run those for real with ``dag.test()``. Here the rules themselves are
checked on a dict, including what a concurrent writer of the index does.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_spaces.leases import INDEX_KEY, Lease, LeaseConflict, LeaseStore, lease_key

NOW = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)
SPACE = "demo/trainer"


class MemoryVariables:
    """Variables in a dict; ``listing`` says whether it can list keys (Airflow 3.2+) or not (3.1)."""

    def __init__(self, *, listing: bool = False) -> None:
        self.values: dict[str, str] = {}
        self.listing = listing
        self.sets: list[str] = []

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.sets.append(key)
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def keys(self, prefix: str) -> list[str] | None:
        return [key for key in self.values if key.startswith(prefix)] if self.listing else None


def lease(run_id: str = "nightly_1", *, space_id: str = SPACE, at: datetime = NOW) -> Lease:
    return Lease.take(
        space_id,
        "a10g-large",
        dag_id="training",
        run_id=run_id,
        task_id="take_gpu_lease",
        max_duration=timedelta(hours=2),
        grace=timedelta(minutes=15),
        now=at,
    )


@pytest.fixture
def variables() -> MemoryVariables:
    return MemoryVariables()


@pytest.fixture
def store(variables: MemoryVariables) -> LeaseStore:
    return LeaseStore(variables, sleep=lambda seconds: None)


def test_a_lease_names_its_holder_and_ends_after_the_longest_window_and_the_grace(store, variables):
    store.take(lease(), now=NOW)

    stored = json.loads(variables.values[lease_key(SPACE)])
    assert stored == {
        "version": 1,
        "space_id": SPACE,
        "hardware": "a10g-large",
        "dag_id": "training",
        "run_id": "nightly_1",
        "task_id": "take_gpu_lease",
        "taken_at": "2026-03-01T01:00:00+00:00",
        "expires_at": "2026-03-01T03:15:00+00:00",
    }
    assert store.get(SPACE) == lease()


def test_a_lease_expires_at_its_end_and_not_before():
    taken = lease()

    assert not taken.expired(NOW + timedelta(hours=2, minutes=14))
    assert taken.expired(NOW + timedelta(hours=2, minutes=15))


def test_another_run_cannot_take_a_space_while_its_lease_holds(store):
    store.take(lease("nightly_1"), now=NOW)

    with pytest.raises(LeaseConflict, match=r"Space demo/trainer is leased to DAG training, run nightly_1"):
        store.take(lease("nightly_2", at=NOW + timedelta(hours=1)), now=NOW + timedelta(hours=1))

    assert store.get(SPACE).run_id == "nightly_1"


def test_an_expired_lease_of_another_run_is_replaced_and_returned(store):
    store.take(lease("nightly_1"), now=NOW)
    later = NOW + timedelta(hours=3)

    replaced = store.take(lease("nightly_2", at=later), now=later)

    assert replaced.run_id == "nightly_1"
    assert store.get(SPACE).run_id == "nightly_2"


def test_a_retried_task_renews_its_own_runs_lease(store):
    store.take(lease("nightly_1"), now=NOW)
    retry = NOW + timedelta(minutes=5)

    store.take(lease("nightly_1", at=retry), now=retry)

    assert store.get(SPACE).taken_at == retry


def test_leases_on_different_spaces_live_side_by_side(store):
    store.take(lease(space_id="demo/one"), now=NOW)
    store.take(lease(space_id="demo/two"), now=NOW)

    assert store.get("demo/one").space_id == "demo/one"
    assert store.get("demo/two").space_id == "demo/two"
    assert store.known_spaces() == ["demo/one", "demo/two"]


def test_release_deletes_the_lease_only_for_the_run_holding_it(store):
    store.take(lease("nightly_1"), now=NOW)

    assert store.release(SPACE, dag_id="training", run_id="nightly_0") is None
    assert store.get(SPACE) is not None
    assert store.release(SPACE, dag_id="training", run_id="nightly_1").run_id == "nightly_1"
    assert store.get(SPACE) is None


def test_a_released_space_stays_known_to_the_guard(store):
    store.take(lease(), now=NOW)
    store.release(SPACE)

    assert store.known_spaces() == [SPACE]


def test_listing_variables_finds_leases_the_index_lost():
    variables = MemoryVariables(listing=True)
    store = LeaseStore(variables, sleep=lambda seconds: None)
    store.take(lease(space_id="demo/one"), now=NOW)
    variables.values[lease_key("demo/two")] = json.dumps(lease(space_id="demo/two").to_dict())

    assert store.known_spaces() == ["demo/one", "demo/two"]


def test_the_index_is_written_again_when_a_concurrent_writer_drops_the_space(variables):
    # Another window read the index before this one wrote it, and writes its own list after.
    def concurrent_writer(seconds: float) -> None:
        if variables.sets.count(INDEX_KEY) == 1:
            variables.values[INDEX_KEY] = json.dumps(["demo/other"])

    store = LeaseStore(variables, sleep=concurrent_writer)

    store.take(lease(), now=NOW)

    assert json.loads(variables.values[INDEX_KEY]) == ["demo/other", SPACE]
    assert variables.sets.count(INDEX_KEY) == 2


def test_an_unreadable_lease_neither_blocks_a_window_nor_hides_the_space(store, variables, caplog):
    variables.values[lease_key(SPACE)] = "not json"

    with pytest.raises(ValueError, match="is not JSON"):
        store.get(SPACE)
    store.take(lease(), now=NOW)

    assert store.get(SPACE) == lease()
    assert "Ignoring the unreadable lease on Space demo/trainer" in caplog.text


def test_ending_a_lease_early_makes_it_expired_at_once():
    ended = lease().ended_now(NOW + timedelta(minutes=20))

    assert ended.expired(NOW + timedelta(minutes=20))
    assert ended.taken_at == NOW
