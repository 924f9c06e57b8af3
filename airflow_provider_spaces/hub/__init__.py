"""A Hugging Face Hub client for Spaces, free of Airflow: models, errors, retries, waiting rules.

Importing this package stays cheap (DAG files import it on every parse): ``SpacesClient``, which
needs ``requests``, is loaded on first use through the module ``__getattr__`` below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_spaces.hub.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HubConnectionError,
    HubError,
    HubHTTPError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    SpaceStageError,
    SpaceWaitTimeout,
    UnexpectedResponseError,
)
from airflow_provider_spaces.hub.models import (
    DuplicateResult,
    HardwareInfo,
    RateLimitState,
    SpaceHardware,
    SpaceInfo,
    SpaceRuntime,
    SpaceSecret,
    SpaceStage,
    SpaceStorage,
    SpaceVariable,
    WhoAmI,
)
from airflow_provider_spaces.hub.retry import RetryPolicy
from airflow_provider_spaces.hub.waiting import CheckReason, CheckStatus, StageCheck, check_stage

if TYPE_CHECKING:
    from airflow_provider_spaces.hub.client import SpacesClient

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BadRequestError",
    "CheckReason",
    "CheckStatus",
    "ConflictError",
    "DuplicateResult",
    "HardwareInfo",
    "HubConnectionError",
    "HubError",
    "HubHTTPError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitState",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "SpaceHardware",
    "SpaceInfo",
    "SpaceRuntime",
    "SpaceSecret",
    "SpaceStage",
    "SpaceStageError",
    "SpaceStorage",
    "SpaceVariable",
    "SpaceWaitTimeout",
    "SpacesClient",
    "StageCheck",
    "UnexpectedResponseError",
    "WhoAmI",
    "check_stage",
]


def __getattr__(name: str) -> Any:
    if name == "SpacesClient":
        from airflow_provider_spaces.hub.client import SpacesClient

        return SpacesClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
