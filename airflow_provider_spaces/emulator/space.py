"""One emulated Space: a state machine whose stage is computed lazily from the clock.

A Space holds its current stage and a *plan*: the stages it will enter at given emulated times if
nothing else happens. Nothing runs in the background; whenever the Space is read or changed it is
first advanced to "now" by applying every planned step that is due (and the idle sleep, which is a
step computed from the last activity). Each step closes one interval of the billing ledger. A
thousand idle Spaces therefore cost nothing but their memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_spaces.hub.catalog import FREE_FLAVOR, is_paid_flavor, known_flavor

BUILDING = "BUILDING"
BUILD_ERROR = "BUILD_ERROR"
APP_STARTING = "APP_STARTING"
RUNNING = "RUNNING"
RUNNING_BUILDING = "RUNNING_BUILDING"
RUNNING_APP_STARTING = "RUNNING_APP_STARTING"
RUNTIME_ERROR = "RUNTIME_ERROR"
PAUSED = "PAUSED"
SLEEPING = "SLEEPING"
STATIC_SDK = "static"

# Billed while starting or running on paid hardware; building, paused, sleeping and errors are free.
BILLED_STAGES = frozenset({APP_STARTING, RUNNING_APP_STARTING, RUNNING, RUNNING_BUILDING})
# Stages in which a container serves the app; a restart there only restarts the app.
SERVING_STAGES = frozenset({RUNNING, RUNNING_BUILDING, RUNNING_APP_STARTING})
ERROR_STAGES = frozenset({BUILD_ERROR, RUNTIME_ERROR, "CONFIG_ERROR", "NO_APP_FILE"})
_STAGE_GROUPS = {
    BUILDING: "building",
    RUNNING_BUILDING: "running",
    APP_STARTING: "starting",
    RUNNING_APP_STARTING: "starting",
    RUNNING: "running",
    PAUSED: "paused",
    SLEEPING: "sleeping",
    "STOPPED": "stopped",
    "DELETING": "stopped",
}
FREE_HARDWARE_SLEEP_SECONDS = 48 * 3600
DEFAULT_BUILD_SECONDS = 30.0
DEFAULT_START_SECONDS = 10.0
DEFAULT_SCHEDULE_SECONDS = 5.0


def stage_group(stage: str) -> str:
    """Return the ledger's group for ``stage``: building, starting, running, paused, ... or other."""
    if stage in ERROR_STAGES:
        return "error"
    return _STAGE_GROUPS.get(stage, "other")


def iso(timestamp: float) -> str:
    """Format an emulated epoch time the way the Hub writes dates."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def price_per_minute(flavor: str | None, overrides: dict[str, float]) -> float | None:
    """Return the dollars per minute of ``flavor``, or None when nothing prices it."""
    if flavor is None:
        return None
    if flavor in overrides:
        return overrides[flavor] / 60.0
    known = known_flavor(flavor)
    if known is None or known.usd_per_hour is None:
        return None
    return known.usd_per_minute


@dataclass(frozen=True)
class Timings:
    """How long the phases of one Space take, in emulated seconds."""

    build_seconds: float = DEFAULT_BUILD_SECONDS
    start_seconds: float = DEFAULT_START_SECONDS
    # How long a Space keeps running on its old flavor after a hardware request.
    schedule_seconds: float = DEFAULT_SCHEDULE_SECONDS
    # A factory reboot builds without cache; None means three times the normal build.
    factory_build_seconds: float | None = None

    @property
    def factory_seconds(self) -> float:
        """Return how long a factory reboot builds."""
        if self.factory_build_seconds is not None:
            return self.factory_build_seconds
        return self.build_seconds * 3

    def validate(self) -> None:
        """Refuse negative durations, which would make the plan run backwards."""
        for name in ("build_seconds", "start_seconds", "schedule_seconds", "factory_build_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be 0 or more, not {value!r}")


@dataclass(frozen=True)
class Outcome:
    """What a scripted fault makes of the next build or start (``ok`` when there is none)."""

    kind: str = "ok"  # ok, build_error, stuck_building, stuck_starting, runtime_error, no_capacity
    message: str | None = None
    after_seconds: float = 0.0


OK = Outcome()


@dataclass(frozen=True)
class Step:
    """A planned change: at ``at`` the Space enters ``stage`` on ``current``."""

    at: float
    stage: str
    current: str | None
    error_message: str | None = None


@dataclass
class Interval:
    """One stretch of time in one stage on one flavor, as the ledger records it."""

    start: float
    end: float | None
    stage: str
    flavor: str | None
    billed: bool

    def minutes(self, now: float) -> float:
        """Return the interval's length in minutes, up to ``now`` while it is open."""
        end = self.end if self.end is not None else now
        return max(0.0, end - self.start) / 60.0

    def to_dict(self, now: float, usd_per_minute: float | None) -> dict[str, Any]:
        """Return the interval for the ledger, priced at ``usd_per_minute`` when billed."""
        minutes = self.minutes(now)
        usd = minutes * usd_per_minute if self.billed and usd_per_minute is not None else 0.0
        return {
            "start": self.start,
            "end": self.end,
            "stage": self.stage,
            "group": stage_group(self.stage),
            "flavor": self.flavor,
            "billed": self.billed,
            "minutes": round(minutes, 6),
            "usd": round(usd, 6),
        }


@dataclass
class Space:
    """The emulated state of one Space; every method takes the emulated ``now``."""

    space_id: str
    sdk: str
    private: bool
    stage: str
    current: str | None
    requested: str | None
    since: float
    created_at: float
    timings: Timings = field(default_factory=Timings)
    sleep_time: int | None = None  # custom sleep time on paid hardware; None or -1 = never
    storage: str | None = None
    dev_mode: bool = False
    error_message: str | None = None
    last_activity: float = 0.0
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Secret values must never show in a repr (a failing assertion prints one).
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    price_overrides: dict[str, float] = field(default_factory=dict)
    plan: list[Step] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (time, log kind, text)

    @property
    def namespace(self) -> str:
        """Return the user or org that owns the Space."""
        return self.space_id.split("/", 1)[0]

    @property
    def is_static(self) -> bool:
        """Tell whether the Space is static (always running, no hardware)."""
        return self.sdk == STATIC_SDK

    # -- reading ---------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply every planned step and the idle sleep that are due at ``now``."""
        while True:
            step = self.plan[0] if self.plan else None
            sleep_at = self._sleep_deadline()
            if sleep_at is not None and sleep_at <= now and (step is None or sleep_at < step.at):
                # Sleeping ends whatever was planned after running (a scripted crash, say).
                self.plan.clear()
                self._enter(Step(sleep_at, SLEEPING, None))
                continue
            if step is None or step.at > now:
                return
            self.plan.pop(0)
            self._enter(step)

    def runtime(self) -> dict[str, Any]:
        """Return the runtime object as the Hub's API shows it (call ``advance`` first)."""
        domain = self.space_id.replace("/", "-").replace("_", "-").replace(".", "-").lower()
        payload: dict[str, Any] = {
            "stage": self.stage,
            "hardware": {"current": self.current, "requested": self.requested},
            "storage": self.storage,
            "devMode": self.dev_mode,
            "replicas": {"requested": 1, "current": 1 if self.stage in SERVING_STAGES else 0},
            "domains": [{"domain": f"{domain}.hf.space", "stage": "READY"}],
        }
        if not self.is_static:
            payload["gcTimeout"] = self.shown_sleep_time()
        if self.error_message is not None and self.stage in ERROR_STAGES:
            payload["errorMessage"] = self.error_message
        return payload

    def shown_sleep_time(self) -> int | None:
        """Return ``gcTimeout`` as shown: fixed on cpu-basic, the custom value on paid hardware."""
        if self.requested == FREE_FLAVOR:
            return FREE_HARDWARE_SLEEP_SECONDS
        if self.sleep_time is None or self.sleep_time < 0:
            return None
        return self.sleep_time

    # -- changing --------------------------------------------------------------------------------

    def seed_stage(self, now: float, stage: str, error_message: str | None, outcome: Outcome) -> None:
        """Put a new Space in ``stage``, planning the rest of the way to RUNNING when it is in motion."""
        if self.is_static:
            self.stage, self.current = RUNNING, None
            return
        if stage == BUILDING:
            self.plan = self._build_steps(now, self.timings.build_seconds, outcome)
            self.advance(now)
            return

        self.stage = stage
        self.error_message = error_message
        self.current = self.requested if stage in SERVING_STAGES or stage == APP_STARTING else None
        flavor = self.requested
        if stage == APP_STARTING:
            self.plan = self._start_steps(now, flavor, outcome)[1:]
        elif stage == RUNNING_BUILDING:
            ready = now + self.timings.build_seconds
            self.plan = [
                Step(ready, RUNNING_APP_STARTING, flavor),
                Step(ready + self.timings.start_seconds, RUNNING, flavor),
            ]
        elif stage == RUNNING_APP_STARTING:
            self.plan = [Step(now + self.timings.start_seconds, RUNNING, flavor)]

    def touch(self, now: float) -> None:
        """Record activity: an idle Space sleeps only after its sleep time without any."""
        self.last_activity = now

    def pause(self, now: float) -> None:
        """Stop at once: nothing runs, nothing is billed, the requested flavor is kept."""
        self.plan.clear()
        self._enter(Step(now, PAUSED, None))

    def wake(self, now: float, outcome: Outcome) -> None:
        """Start a sleeping Space again on the same hardware, as a visitor would."""
        self.plan = self._start_steps(now, self.requested, outcome)
        self.advance(now)

    def restart(self, now: float, *, factory: bool, outcome: Outcome) -> None:
        """Restart the app of a running Space, or build again (always for a factory reboot)."""
        if not factory and self.stage in SERVING_STAGES and self.current == self.requested:
            self.plan = self._start_steps(now, self.requested, outcome)
        else:
            build = self.timings.factory_seconds if factory else self.timings.build_seconds
            self.plan = self._build_steps(now, build, outcome)
        self.advance(now)

    def request_hardware(self, now: float, flavor: str, outcome: Outcome) -> None:
        """Ask for ``flavor``: requested at once, current only after the rebuild ends."""
        if flavor == self.requested:
            return
        self.requested = flavor
        if flavor == FREE_FLAVOR:
            # A custom sleep time belongs to paid hardware; cpu-basic has its fixed one.
            self.sleep_time = None
        if self.stage == PAUSED:
            return

        # The Space keeps its present stage and flavor while the Hub schedules the new machine.
        start = now + self.timings.schedule_seconds
        self.plan = self._build_steps(start, self.timings.build_seconds, outcome)
        self.advance(now)

    def restart_app(self, now: float, outcome: Outcome) -> None:
        """Restart the app after a secret change, if it is running."""
        if self.stage == RUNNING:
            self.plan = self._start_steps(now, self.current, outcome)
            self.advance(now)

    def ledger_intervals(self) -> list[Interval]:
        """Return the closed intervals and the open one (end None) of the present stage."""
        open_interval = Interval(
            self.since, None, self.stage, self.current, self._billed(self.stage, self.current)
        )
        return [*self.intervals, open_interval]

    # -- internals -------------------------------------------------------------------------------

    def _build_steps(self, start: float, build_seconds: float, outcome: Outcome) -> list[Step]:
        # The old flavor stays in hardware.current while the new image builds (not billed).
        keep = self.current if self.stage in SERVING_STAGES or self.stage == BUILDING else None
        steps = [Step(start, BUILDING, keep)]
        if outcome.kind in ("stuck_building", "no_capacity"):
            return steps
        end = start + build_seconds
        if outcome.kind == "build_error":
            return [*steps, Step(end, BUILD_ERROR, None, outcome.message)]
        return [*steps, *self._start_steps(end, self.requested, outcome)]

    def _start_steps(self, start: float, flavor: str | None, outcome: Outcome) -> list[Step]:
        steps = [Step(start, APP_STARTING, flavor)]
        if outcome.kind == "stuck_starting":
            return steps
        running_at = start + self.timings.start_seconds
        steps.append(Step(running_at, RUNNING, flavor))
        if outcome.kind == "runtime_error":
            steps.append(Step(running_at + outcome.after_seconds, RUNTIME_ERROR, flavor, outcome.message))
        return steps

    def _enter(self, step: Step) -> None:
        at = max(step.at, self.since)
        self.intervals.append(
            Interval(self.since, at, self.stage, self.current, self._billed(self.stage, self.current))
        )
        self.stage = step.stage
        self.current = step.current
        self.error_message = step.error_message
        self.since = at
        kind = "build" if step.stage in (BUILDING, BUILD_ERROR) else "run"
        text = f"{step.stage} on {step.current or 'no hardware'}"
        if step.error_message:
            text += f": {step.error_message}"
        self.events.append((at, kind, text))

    def _sleep_deadline(self) -> float | None:
        if self.stage != RUNNING or self.is_static:
            return None
        seconds = self._effective_sleep_seconds()
        if seconds is None:
            return None
        return max(self.last_activity, self.since) + seconds

    def _effective_sleep_seconds(self) -> float | None:
        if self.current is None:
            return None
        if not is_paid_flavor(self.current):
            return FREE_HARDWARE_SLEEP_SECONDS
        if self.sleep_time is None or self.sleep_time < 0:
            return None
        return float(self.sleep_time)

    @staticmethod
    def _billed(stage: str, flavor: str | None) -> bool:
        return stage in BILLED_STAGES and is_paid_flavor(flavor)
