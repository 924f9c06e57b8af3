"""What the operators and the sensor share as Airflow tasks: how Hub errors fail a task, how
templated values are read, and how secret values reach the secrets masker.

Light on purpose (DAG files import it through the operators): Airflow's task SDK and the hub's
pure modules only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from airflow_provider_spaces._compat import AirflowFailException, mask_secret
from airflow_provider_spaces.hub.errors import HubError
from airflow_provider_spaces.hub.validation import validate_sleep_time

__all__ = ["hub_errors_fail_the_task", "mask_values", "optional_sleep_time"]

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


@contextmanager
def hub_errors_fail_the_task() -> Iterator[None]:
    """Turn a final Hub error into a task failure that Airflow does not retry.

    Final errors (bad input, 400/401/403/404/409, an error stage) need a person to change
    something, so retrying would only spend the token's quota; the task fails at once with the
    error's own message, which names the Space, the Hub's words, the request id and what to check.
    Transient errors (rate limits, server and network trouble, a wait that timed out) are let
    through unchanged, for Airflow's retries to try again.
    """
    try:
        yield
    except HubError as error:
        if error.is_final:
            raise AirflowFailException(str(error)) from error
        raise


def optional_sleep_time(value: Any, *, argument: str = "sleep_time") -> int | None:
    """Return a sleep time in seconds (-1: never), or None when unset.

    A template renders to a string, so a string holding a whole number counts as that number.
    """
    if value is None:
        return None
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value)
    return validate_sleep_time(value, argument=argument)


def mask_values(values: Any) -> None:
    """Register every string value of a mapping with Airflow's secrets masker.

    Called as soon as templated secrets are rendered, so that the values are masked in the task
    log and in the rendered fields Airflow stores (Airflow 3.3 redacts them in the task process
    with this masker; Airflow 3.1 redacts them in the API server, which knows only the field's
    name, and a field named ``secrets`` is hidden whole there).
    """
    if not isinstance(values, Mapping):
        return
    for value in values.values():
        if isinstance(value, str) and value:
            mask_secret(value)
