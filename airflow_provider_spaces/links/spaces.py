"""The "Space" and "Space settings" buttons of a task: links to the page of the Space the task acted
on, and to that Space's settings page (hardware, sleep time, secrets and variables).

Airflow 3 asks a link for its URL once, on the worker, when the task instance ends (whatever its
state), and keeps the answer in XCom under the link's ``xcom_key``; the API server reads it from
there. So the URL must be known on the operator instance by then: the operators and the sensor set
``space_url`` as soon as they know the Space and the Hub endpoint, before their first request,
so that a task that fails on the Hub still links to the Space's page and its logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow_provider_spaces._compat import TaskInstanceKey

__all__ = ["SpaceLink", "SpaceSettingsLink"]


class SpaceLink(BaseOperatorLink):
    """Link to the Hub page of the Space a task acted on (the new copy, for a duplicate)."""

    name = "Space"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Return the Space's page, or an empty string (no button) when the task never knew it.

        Never raises: Airflow 3.1 does not catch an error raised here, and would fail the task.
        """
        url = getattr(operator, "space_url", None)
        return url if isinstance(url, str) else ""


class SpaceSettingsLink(BaseOperatorLink):
    """Link to the settings page of the Space a task acted on: hardware, sleep time, secrets."""

    name = "Space settings"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Return the Space's settings page, or an empty string when the task never knew the Space.

        Never raises, for the same reason as :meth:`SpaceLink.get_link`.
        """
        url = getattr(operator, "space_url", None)
        return f"{url}/settings" if isinstance(url, str) and url else ""
