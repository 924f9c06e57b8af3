"""Typed views of what the Hub returns about Spaces, named as ``huggingface_hub`` users know them.

Parsing is forgiving on purpose: the Hub leaves out or nulls almost every key depending on the
Space (static, first build, never-sleep setting), and adds stages and hardware flavors over the
years. Only a runtime without ``stage`` is refused. A stage or flavor this module does not know is
carried as the plain string the Hub sent; a known one becomes an enum member, which compares equal
to that same string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeVar

from airflow_provider_spaces.hub.errors import UnexpectedResponseError

__all__ = [
    "AT_REST_STAGES",
    "ERROR_STAGES",
    "IN_MOTION_STAGES",
    "AcceleratorInfo",
    "DuplicateResult",
    "HardwareInfo",
    "RateLimitState",
    "SpaceHardware",
    "SpaceInfo",
    "SpaceRuntime",
    "SpaceSecret",
    "SpaceStage",
    "SpaceStorage",
    "SpaceVariable",
    "WhoAmI",
    "at_rest",
    "in_motion",
    "is_error",
    "is_known_stage",
    "space_url",
]

_E = TypeVar("_E", bound="_OpenStrEnum")


class _OpenStrEnum(str, Enum):
    """A string enum whose parsing keeps unknown values as plain strings."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    @classmethod
    def parse(cls: type[_E], value: str) -> _E | str:
        """Return the member for ``value``, or ``value`` itself when it is not a known one."""
        try:
            return cls(value)
        except ValueError:
            return value


class SpaceStage(_OpenStrEnum):
    """The stage of a Space as the runtime reports it; the Hub may send others."""

    NO_APP_FILE = "NO_APP_FILE"
    CONFIG_ERROR = "CONFIG_ERROR"
    BUILDING = "BUILDING"
    BUILD_ERROR = "BUILD_ERROR"
    RUNNING = "RUNNING"
    RUNNING_BUILDING = "RUNNING_BUILDING"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    DELETING = "DELETING"
    STOPPED = "STOPPED"
    PAUSED = "PAUSED"
    APP_STARTING = "APP_STARTING"
    RUNNING_APP_STARTING = "RUNNING_APP_STARTING"
    SLEEPING = "SLEEPING"


IN_MOTION_STAGES: frozenset[SpaceStage] = frozenset(
    {
        SpaceStage.BUILDING,
        SpaceStage.RUNNING_BUILDING,
        SpaceStage.APP_STARTING,
        SpaceStage.RUNNING_APP_STARTING,
    }
)
ERROR_STAGES: frozenset[SpaceStage] = frozenset(
    {SpaceStage.BUILD_ERROR, SpaceStage.RUNTIME_ERROR, SpaceStage.CONFIG_ERROR, SpaceStage.NO_APP_FILE}
)
# A sleeping Space rests until a visitor wakes it; it counts with the other stages that stay put.
AT_REST_STAGES: frozenset[SpaceStage] = frozenset(
    {SpaceStage.RUNNING, SpaceStage.PAUSED, SpaceStage.STOPPED, SpaceStage.DELETING, SpaceStage.SLEEPING}
)


def _as_stage(stage: str) -> SpaceStage | str:
    return stage if isinstance(stage, SpaceStage) else SpaceStage.parse(stage)


def is_known_stage(stage: str) -> bool:
    """Tell whether ``stage`` is one of the stages this package knows."""
    return isinstance(_as_stage(stage), SpaceStage)


def in_motion(stage: str) -> bool:
    """Tell whether a Space in ``stage`` is building or starting, so it will move on by itself."""
    return _as_stage(stage) in IN_MOTION_STAGES


def is_error(stage: str) -> bool:
    """Tell whether ``stage`` is an error stage (build, runtime or configuration error, no app)."""
    return _as_stage(stage) in ERROR_STAGES


def at_rest(stage: str) -> bool:
    """Tell whether a Space in ``stage`` stays there until something or someone moves it."""
    return _as_stage(stage) in AT_REST_STAGES


class SpaceHardware(_OpenStrEnum):
    """Hardware flavors known to this package (see ``hub/catalog.py``); the Hub may offer others."""

    CPU_BASIC = "cpu-basic"
    CPU_UPGRADE = "cpu-upgrade"
    T4_SMALL = "t4-small"
    T4_MEDIUM = "t4-medium"
    L4X1 = "l4x1"
    L4X4 = "l4x4"
    L40SX1 = "l40sx1"
    L40SX4 = "l40sx4"
    L40SX8 = "l40sx8"
    A10G_SMALL = "a10g-small"
    A10G_LARGE = "a10g-large"
    A10G_LARGEX2 = "a10g-largex2"
    A10G_LARGEX4 = "a10g-largex4"
    A100_LARGE = "a100-large"
    A100X4 = "a100x4"
    A100X8 = "a100x8"
    ZERO_A10G = "zero-a10g"


class SpaceStorage(_OpenStrEnum):
    """Persistent storage tiers (the legacy storage offer); the Hub may name others."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


def space_url(endpoint: str, space_id: str) -> str:
    """Return the web page of a Space on the Hub at ``endpoint``."""
    return f"{endpoint.rstrip('/')}/spaces/{space_id}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: Any) -> int | None:
    # bool is an int to Python, never a duration to the Hub.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flavor(value: Any) -> SpaceHardware | str | None:
    text = _text(value)
    return SpaceHardware.parse(text) if text is not None else None


def _plain(value: str | None) -> str | None:
    # Enum members become their bare string so that XCom and JSON see ordinary values.
    return None if value is None else str(value)


def parse_timestamp(value: Any) -> datetime | None:
    """Read an ISO 8601 timestamp as the Hub writes it (``Z`` suffix included); None if unreadable."""
    text = _text(value)
    if text is None:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# The ``raw`` of a runtime kept without its payload: one empty mapping that nothing can change.
_NO_PAYLOAD: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class SpaceRuntime:
    """The runtime of a Space: where it is in its life, on which hardware, with which settings.

    ``hardware`` is the flavor it runs on now; ``requested_hardware`` the one asked for, which
    ``hardware`` only reaches once the rebuild ends. ``sleep_time`` is in seconds (``-1``: never
    sleeps; None: the Hub's default). ``raw`` keeps the whole payload for keys not modelled here.
    """

    space_id: str
    stage: SpaceStage | str
    hardware: SpaceHardware | str | None = None
    requested_hardware: SpaceHardware | str | None = None
    sleep_time: int | None = None
    storage: SpaceStorage | str | None = None
    dev_mode: bool = False
    error_message: str | None = None
    url: str = ""
    request_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_payload(
        cls,
        space_id: str,
        payload: Any,
        *,
        endpoint: str,
        request_id: str | None = None,
    ) -> SpaceRuntime:
        """Build a runtime from the Hub's JSON; only ``stage`` is required.

        :raises UnexpectedResponseError: the payload is not an object or has no ``stage``.
        """
        if not isinstance(payload, Mapping) or not _text(payload.get("stage")):
            raise UnexpectedResponseError(
                "the runtime in the Hub's answer has no stage",
                space_id=space_id,
                action="read the runtime of {space}",
                request_id=request_id,
            )

        hardware = _mapping(payload.get("hardware"))
        storage = _text(payload.get("storage"))
        return cls(
            space_id=space_id,
            stage=SpaceStage.parse(payload["stage"]),
            hardware=_flavor(hardware.get("current")),
            requested_hardware=_flavor(hardware.get("requested")),
            sleep_time=_integer(payload.get("gcTimeout")),
            storage=SpaceStorage.parse(storage) if storage else None,
            dev_mode=payload.get("devMode") is True,
            error_message=_text(payload.get("errorMessage")),
            url=space_url(endpoint, space_id),
            request_id=request_id,
            raw=payload,
        )

    @property
    def in_motion(self) -> bool:
        """Tell whether the Space is building or starting."""
        return in_motion(self.stage)

    @property
    def is_error(self) -> bool:
        """Tell whether the Space is in an error stage."""
        return is_error(self.stage)

    @property
    def at_rest(self) -> bool:
        """Tell whether the Space stays in its stage until something moves it."""
        return at_rest(self.stage)

    def arrived(self, flavor: str) -> bool:
        """Tell whether the Space runs, and runs on ``flavor`` (not merely asked for it)."""
        return self.stage == SpaceStage.RUNNING and self.hardware == flavor

    def without_payload(self) -> SpaceRuntime:
        """Return this runtime without ``raw``, for a watcher that keeps the last read for hours.

        The Hub's whole payload weighs more than everything else here; a triggerer holding the
        last read of a thousand Spaces needs only the modelled fields.
        """
        return replace(self, raw=_NO_PAYLOAD)

    def to_dict(self) -> dict[str, Any]:
        """Return the small JSON-friendly summary that tasks push to XCom."""
        summary: dict[str, Any] = {
            "space_id": self.space_id,
            "stage": str(self.stage),
            "hardware": _plain(self.hardware),
            "requested_hardware": _plain(self.requested_hardware),
            "sleep_time": self.sleep_time,
            "storage": _plain(self.storage),
            "url": self.url,
        }
        if self.error_message:
            summary["error_message"] = self.error_message
        return summary


@dataclass(frozen=True)
class SpaceVariable:
    """A public environment variable of a Space."""

    key: str
    value: str
    description: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_payload(cls, key: str, payload: Any) -> SpaceVariable:
        """Build a variable from one entry of the Hub's ``{KEY: {...}}`` map."""
        entry = _mapping(payload)
        value = entry.get("value")
        return cls(
            key=key,
            value=value if isinstance(value, str) else "" if value is None else str(value),
            description=_text(entry.get("description")),
            updated_at=parse_timestamp(entry.get("updatedAt")),
        )


@dataclass(frozen=True)
class SpaceSecret:
    """A secret of a Space: its key and metadata. The Hub never returns a secret's value."""

    key: str
    description: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_payload(cls, key: str, payload: Any) -> SpaceSecret:
        """Build a secret's metadata from one entry of the Hub's ``{KEY: {...}}`` map."""
        entry = _mapping(payload)
        return cls(
            key=key,
            description=_text(entry.get("description")),
            updated_at=parse_timestamp(entry.get("updatedAt")),
        )


@dataclass(frozen=True)
class AcceleratorInfo:
    """The accelerator of a hardware flavor, as the catalog describes it."""

    type: str | None = None
    model: str | None = None
    quantity: int | None = None
    vram: str | None = None
    manufacturer: str | None = None


_SECONDS_PER_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class HardwareInfo:
    """One entry of the Hub's hardware catalog, with its price."""

    name: SpaceHardware | str
    pretty_name: str | None = None
    cpu: str | None = None
    ram: str | None = None
    accelerator: AcceleratorInfo | None = None
    unit_cost_usd: float | None = None
    unit_cost_micro_usd: int | None = None
    unit_label: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_payload(cls, payload: Any) -> HardwareInfo | None:
        """Build a catalog entry; None when the entry has no name to go by."""
        entry = _mapping(payload)
        name = _text(entry.get("name"))
        if name is None:
            return None

        accelerator = entry.get("accelerator")
        cost = entry.get("unitCostUSD")
        return cls(
            name=SpaceHardware.parse(name),
            pretty_name=_text(entry.get("prettyName")),
            cpu=_text(entry.get("cpu")),
            ram=_text(entry.get("ram")),
            accelerator=_accelerator(accelerator) if isinstance(accelerator, Mapping) else None,
            unit_cost_usd=float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool)
            else None,
            unit_cost_micro_usd=_integer(entry.get("unitCostMicroUSD")),
            unit_label=_text(entry.get("unitLabel")),
            raw=entry,
        )

    @property
    def usd_per_hour(self) -> float | None:
        """Return the price per hour, or None when the catalog's unit is not a span of time."""
        if self.unit_cost_usd is None or self.unit_label is None:
            return None
        seconds = _SECONDS_PER_UNIT.get(self.unit_label.lower())
        return None if seconds is None else self.unit_cost_usd * 3600 / seconds


def _accelerator(entry: Mapping[str, Any]) -> AcceleratorInfo:
    return AcceleratorInfo(
        type=_text(entry.get("type")),
        model=_text(entry.get("model")),
        quantity=_integer(entry.get("quantity")),
        vram=_text(entry.get("vram")),
        manufacturer=_text(entry.get("manufacturer")),
    )


@dataclass(frozen=True)
class DuplicateResult:
    """The outcome of a duplicate: the target's URL and id, and whether this call created it."""

    url: str
    space_id: str
    created: bool


@dataclass(frozen=True)
class WhoAmI:
    """Who a token belongs to, and what it may do."""

    name: str
    type: str | None = None
    token_role: str | None = None
    orgs: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_payload(cls, payload: Any) -> WhoAmI:
        """Build the identity from the Hub's who-am-I answer.

        :raises UnexpectedResponseError: the answer has no account name.
        """
        entry = _mapping(payload)
        name = _text(entry.get("name"))
        if name is None:
            raise UnexpectedResponseError(
                "the who-am-I answer has no account name", action="read the token's identity"
            )

        access = _mapping(_mapping(entry.get("auth")).get("accessToken"))
        orgs = entry.get("orgs")
        return cls(
            name=name,
            type=_text(entry.get("type")),
            token_role=_text(access.get("role")),
            orgs=tuple(org_name for org in orgs or () if (org_name := _text(_mapping(org).get("name")))),
            raw=entry,
        )

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Return the namespaces the token acts in: its own account first, then its organizations."""
        return (self.name, *self.orgs)


@dataclass(frozen=True)
class SpaceInfo:
    """The repository information of a Space, with its runtime when the Hub includes it."""

    space_id: str
    private: bool | None = None
    sdk: str | None = None
    runtime: SpaceRuntime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_payload(
        cls, space_id: str, payload: Any, *, endpoint: str, request_id: str | None = None
    ) -> SpaceInfo:
        """Build the Space's information; a runtime without a stage is left out rather than refused."""
        entry = _mapping(payload)
        runtime_payload = entry.get("runtime")
        runtime = None
        if isinstance(runtime_payload, Mapping) and _text(runtime_payload.get("stage")):
            runtime = SpaceRuntime.from_payload(
                space_id, runtime_payload, endpoint=endpoint, request_id=request_id
            )
        private = entry.get("private")
        return cls(
            space_id=_text(entry.get("id")) or space_id,
            private=private if isinstance(private, bool) else None,
            sdk=_text(entry.get("sdk")),
            runtime=runtime,
            raw=entry,
        )


@dataclass(frozen=True)
class RateLimitState:
    """The Hub's rate-limit headers of one answer, parsed.

    ``remaining`` calls are left in the current window, which resets in ``reset_seconds``;
    ``quota`` calls are allowed per ``window_seconds``. Any part the Hub left out is None.
    """

    remaining: int | None = None
    reset_seconds: float | None = None
    quota: int | None = None
    window_seconds: float | None = None
    bucket: str | None = None

    @property
    def exhausted(self) -> bool:
        """Tell whether the quota of the current window is used up."""
        return self.remaining is not None and self.remaining <= 0

    def wait_seconds(self) -> float | None:
        """Return how long to wait before the next call succeeds, or None when no wait is needed."""
        if self.exhausted and self.reset_seconds is not None:
            return self.reset_seconds
        return None
