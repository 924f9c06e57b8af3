"""The "Space" and "Space settings" buttons: what each link answers, that every operator and the
sensor carries both, and that Airflow's providers manager registers both."""

from __future__ import annotations

import inspect

import pytest

from airflow_provider_spaces.links.spaces import SpaceLink, SpaceSettingsLink
from airflow_provider_spaces.operators import spaces as operators
from airflow_provider_spaces.sensors.spaces import SpaceStageSensor

URL = "http://127.0.0.1:8765/spaces/me/app"
TASKS = sorted(
    [
        cls
        for _, cls in inspect.getmembers(operators, inspect.isclass)
        if cls.__module__ == operators.__name__ and not cls.__name__.startswith("_")
    ]
    + [SpaceStageSensor],
    key=lambda cls: cls.__name__,
)


class _Task:
    def __init__(self, space_url: object) -> None:
        self.space_url = space_url


@pytest.mark.parametrize(
    ("link", "expected"),
    [(SpaceLink(), URL), (SpaceSettingsLink(), f"{URL}/settings")],
    ids=["space-page", "settings-page"],
)
def test_a_link_points_at_the_space_the_task_knew(link, expected):
    assert link.get_link(_Task(URL), ti_key=None) == expected


@pytest.mark.parametrize("link", [SpaceLink(), SpaceSettingsLink()], ids=["space-page", "settings-page"])
@pytest.mark.parametrize("space_url", [None, "", 42], ids=["never-known", "empty", "not-a-string"])
def test_a_task_that_never_knew_its_space_shows_no_button_and_does_not_fail(link, space_url):
    assert link.get_link(_Task(space_url), ti_key=None) == ""


def test_the_link_names_are_the_buttons_users_see():
    assert (SpaceLink.name, SpaceSettingsLink.name) == ("Space", "Space settings")


@pytest.mark.parametrize("task_class", TASKS, ids=[cls.__name__ for cls in TASKS])
def test_every_operator_and_the_sensor_link_to_the_space_and_its_settings(task_class):
    assert [type(link) for link in task_class.operator_extra_links] == [SpaceLink, SpaceSettingsLink]


def test_there_are_eight_operators_and_a_sensor_to_link_from():
    assert len(TASKS) == 9


def test_providers_manager_registers_both_links(monkeypatch):
    from airflow.providers_manager import ProvidersManager

    monkeypatch.setattr(ProvidersManager, "_initialized", False)
    manager = object.__new__(ProvidersManager)
    manager.__init__()  # type: ignore[misc]

    assert {
        "airflow_provider_spaces.links.spaces.SpaceLink",
        "airflow_provider_spaces.links.spaces.SpaceSettingsLink",
    } <= set(manager.extra_links_class_names)
