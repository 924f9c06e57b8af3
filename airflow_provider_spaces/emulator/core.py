"""The emulated Hub without HTTP: tokens, Spaces, rules, faults, quotas, the ledger and the log.

Every Hub operation takes the caller (the token that came with the request) and either returns the
JSON body of a 200 answer or raises :class:`HubProblem` with the status, error code and message the
Hub would send. The HTTP layer (``app.py``) only translates. One re-entrant lock guards all state:
the server thread and the test thread that scripts the emulator both go through it, and no
operation waits while holding it.

Role choice: a read-only token asking for a change gets **401** (the Hub answers such tokens with
401 or 403 depending on the route; we pick one so that clients can rely on it), with a message
saying that the token's role is read and a write token is needed. 403 is kept for a write token
that does not own the namespace, for paid hardware without a payment method, and for scripted
refusals such as a quota.

Flavors: as on the Hub, a hardware request (or a duplicate's ``hardware``) for a flavor the catalog
lacks is refused with 400 and the list of flavors on offer, so that a typo in a DAG fails offline
as it would online. The emulated catalog is the built-in table plus any flavor priced with
``set_price``; seeding a Space takes any flavor.

Time: everything runs on the emulated clock, the per-token quota window and the ``t=`` and
``Retry-After`` seconds included. With a speed above 1 a client that sleeps what the headers say in
real time waits longer than needed; tests that need a fresh window call ``advance``. Every request,
a refused one included, counts against the quota, as a 429 does not give calls back.

Known shortcomings, each to lift when a test needs it: persistent storage is kept as a tier but not
billed in the ledger; ZeroGPU is treated as free hardware without its daily quota; the hardware
catalog's CPU and RAM figures are approximate for the flavors it knows.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets as token_source
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_spaces.emulator.clock import EmulatorClock
from airflow_provider_spaces.emulator.faults import Fault, FaultBook, make_fault
from airflow_provider_spaces.emulator.space import (
    APP_STARTING,
    BUILDING,
    OK,
    PAUSED,
    RUNNING,
    SERVING_STAGES,
    SLEEPING,
    STATIC_SDK,
    Space,
    Timings,
    iso,
    price_per_minute,
)
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR, KNOWN_FLAVORS, Flavor, is_paid_flavor

ZERO_GPU = "zero-a10g"
STORAGE_TIERS = ("small", "medium", "large")
DEFAULT_QUOTA = 1000
DEFAULT_QUOTA_WINDOW = 300
DEFAULT_LOG_SIZE = 100_000
BAD_TOKEN_MESSAGE = "Invalid credentials in Authorization header"
_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_FLAVOR = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
# Approximate machine sizes for the catalog endpoint; the built-in catalog carries only prices.
_MACHINES = {
    "cpu-basic": ("2 vCPU", "16 GB"),
    "cpu-upgrade": ("8 vCPU", "32 GB"),
    "t4-small": ("4 vCPU", "15 GB"),
    "t4-medium": ("8 vCPU", "30 GB"),
    "a10g-small": ("4 vCPU", "15 GB"),
    "a10g-large": ("12 vCPU", "46 GB"),
    "a100-large": ("12 vCPU", "142 GB"),
}


class HubProblem(Exception):
    """An error answer of the emulated Hub: status, ``X-Error-Code`` and message."""

    def __init__(
        self, status: int, code: str, message: str, *, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})
        self.headers: dict[str, str] = {}


class UnknownSpaceError(LookupError):
    """The emulator holds no Space by that id (scripting API)."""


@dataclass(frozen=True)
class TokenRecord:
    """A token the emulator accepts; ``value`` is the secret and never leaves through a repr."""

    value: str = field(repr=False)
    owner: str
    role: str
    orgs: tuple[str, ...] = ()

    @property
    def namespaces(self) -> frozenset[str]:
        """Return the namespaces this token owns: its owner and its orgs."""
        return frozenset((self.owner, *self.orgs))


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a known token, no token, or a token the emulator does not know."""

    token: TokenRecord | None
    bad_token: bool = False
    address: str = "127.0.0.1"

    @property
    def owner(self) -> str | None:
        """Return the token's owner, or None without a known token."""
        return self.token.owner if self.token else None


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass(frozen=True)
class QuotaState:
    """The quota figures that go into the RateLimit headers of one answer."""

    limit: int
    window: int
    remaining: int
    reset_seconds: int
    exceeded: bool

    def headers(self) -> dict[str, str]:
        """Return the ``RateLimit`` and ``RateLimit-Policy`` headers."""
        return {
            "RateLimit": f'"api";r={self.remaining};t={self.reset_seconds}',
            "RateLimit-Policy": f'"fixed window";"api";q={self.limit};w={self.window}',
        }


def new_token() -> str:
    """Return a fresh random token value in the Hub's style."""
    return "hf_emu_" + token_source.token_hex(16)


class EmulatedHub:
    """All state of one emulated Hub and every operation on it (HTTP-free)."""

    def __init__(
        self,
        *,
        clock: EmulatorClock,
        write_token: str | None = None,
        read_token: str | None = None,
        quota: int = DEFAULT_QUOTA,
        quota_window: int = DEFAULT_QUOTA_WINDOW,
        log_size: int = DEFAULT_LOG_SIZE,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.write_token = write_token or new_token()
        self.read_token = read_token or new_token()
        self._default_quota = (quota, quota_window)
        self._log_size = log_size
        self.reset()

    # == scripting API (also served under /_emulator/) ============================================

    def reset(self) -> None:
        """Forget every Space, fault, extra token, price, quota use and logged request."""
        with self.lock:
            self.spaces: dict[str, Space] = {}
            self.faults = FaultBook()
            self.tokens: dict[str, TokenRecord] = {}
            self.no_payment: set[str] = set()
            self.prices: dict[str, float] = {}
            self.quota, self.quota_window = self._default_quota
            self._windows: dict[str, _Window] = {}
            self.log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._add_token_locked(self.write_token, "demo", "write", ("demo-org",))
            self._add_token_locked(self.read_token, "demo", "read", ())

    def add_token(
        self, owner: str, *, role: str = "write", orgs: Iterable[str] = (), token: str | None = None
    ) -> str:
        """Accept a new token for ``owner`` (and its ``orgs``) with ``role`` read or write."""
        if role not in ("read", "write"):
            raise ValueError(f"role must be 'read' or 'write', not {role!r}")
        if not owner:
            raise ValueError("owner must not be empty")
        value = token or new_token()
        with self.lock:
            self._add_token_locked(value, owner, role, tuple(orgs))
        return value

    def set_payment_method(self, namespace: str, enabled: bool) -> None:
        """Give or take away the payment method of a user or org (needed for paid hardware)."""
        with self.lock:
            if enabled:
                self.no_payment.discard(namespace)
            else:
                self.no_payment.add(namespace)

    def add_space(
        self,
        space_id: str,
        *,
        hardware: str | None = FREE_FLAVOR,
        stage: str = RUNNING,
        sdk: str = "gradio",
        private: bool = False,
        build_seconds: float | None = None,
        start_seconds: float | None = None,
        schedule_seconds: float | None = None,
        factory_build_seconds: float | None = None,
        sleep_time: int | None = None,
        storage: str | None = None,
        error_message: str | None = None,
        variables: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Space in ``stage`` on ``hardware`` and return its runtime."""
        self._check_space_id(space_id)
        timings = self._timings(build_seconds, start_seconds, schedule_seconds, factory_build_seconds)
        if storage is not None and storage not in STORAGE_TIERS:
            raise ValueError(f"storage must be one of {', '.join(STORAGE_TIERS)} or None, not {storage!r}")
        with self.lock:
            if space_id in self.spaces:
                raise ValueError(f"Space {space_id} already exists")
            now = self.clock.now()
            space = self._new_space(space_id, sdk=sdk, private=private, hardware=hardware, now=now)
            space.timings = timings
            space.sleep_time = sleep_time
            space.storage = storage
            self._fill_map(space.variables, variables, now)
            self._fill_map(space.secrets, secrets, now)
            self._seed_stage(space, stage, error_message, now)
            self.spaces[space_id] = space
            return space.runtime()

    def space_runtime(self, space_id: str) -> dict[str, Any]:
        """Return the runtime of a Space as the API would, without counting as a request."""
        with self.lock:
            return self._advanced(self._space(space_id)).runtime()

    def visit(self, space_id: str) -> dict[str, Any]:
        """Act as a visitor: counts as activity and wakes a sleeping Space."""
        with self.lock:
            now = self.clock.now()
            space = self._advanced(self._space(space_id), now)
            space.touch(now)
            if space.stage == SLEEPING:
                space.wake(now, self.faults.build_outcome(space_id, space.requested, now, build=False))
            return space.runtime()

    def add_fault(
        self,
        kind: str,
        *,
        space_id: str | None = None,
        count: int | None = None,
        seconds: float | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Script a fault (see ``faults.py`` for kinds and options); return its description."""
        if space_id is not None:
            self._check_space_id(space_id)
        with self.lock:
            fault = make_fault(
                kind, space_id=space_id, count=count, seconds=seconds, now=self.clock.now(), options=options
            )
            return self.faults.add(fault).to_dict()

    def list_faults(self) -> list[dict[str, Any]]:
        """Return the faults that are still active."""
        with self.lock:
            return self.faults.listing(self.clock.now())

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        with self.lock:
            self.faults.clear()

    def set_quota(self, limit: int, window_seconds: int = DEFAULT_QUOTA_WINDOW) -> None:
        """Set the per-token quota: ``limit`` calls per fixed window of ``window_seconds`` (emulated)."""
        if limit < 1 or window_seconds < 1:
            raise ValueError("quota limit and window_seconds must be 1 or more")
        with self.lock:
            self.quota, self.quota_window = int(limit), int(window_seconds)
            self._windows.clear()

    def set_price(self, flavor: str, usd_per_hour: float, *, space_id: str | None = None) -> None:
        """Price ``flavor`` (e.g. one the catalog lacks) for all Spaces or for one."""
        if usd_per_hour < 0:
            raise ValueError(f"usd_per_hour must be 0 or more, not {usd_per_hour!r}")
        with self.lock:
            target = self._space(space_id).price_overrides if space_id else self.prices
            target[flavor] = float(usd_per_hour)

    def ledger(self, space_id: str | None = None) -> dict[str, Any]:
        """Return the billing intervals and totals of one Space, or of all with per-Space parts."""
        with self.lock:
            now = self.clock.now()
            if space_id is not None:
                return {**self._space_ledger(self._advanced(self._space(space_id), now), now), "as_of": now}
            parts = {sid: self._space_ledger(self._advanced(s, now), now) for sid, s in self.spaces.items()}
            minutes: dict[str, float] = {}
            for part in parts.values():
                for flavor, value in part["billed_minutes"].items():
                    minutes[flavor] = minutes.get(flavor, 0.0) + value
            return {
                "spaces": parts,
                "billed_minutes": {flavor: round(value, 6) for flavor, value in minutes.items()},
                "usd": round(sum(part["usd"] for part in parts.values()), 6),
                "as_of": now,
            }

    def request_log(self, space_id: str | None = None) -> list[dict[str, Any]]:
        """Return the logged requests, oldest first, optionally only those about one Space."""
        with self.lock:
            return [dict(entry) for entry in self.log if space_id is None or entry["space_id"] == space_id]

    def seed_demo(self) -> list[str]:
        """Add a small set of Spaces for demos and manual trials; return their ids."""
        seeds: list[tuple[str, dict[str, Any]]] = [
            ("demo/gpu-trainer", {"hardware": FREE_FLAVOR}),
            ("demo/private-app", {"hardware": FREE_FLAVOR, "private": True}),
            ("demo/static-docs", {"sdk": STATIC_SDK, "hardware": None}),
            ("demo-org/team-app", {"hardware": "t4-small", "sleep_time": 3600}),
            ("someone-else/public-app", {"hardware": FREE_FLAVOR}),
        ]
        for space_id, options in seeds:
            self.add_space(space_id, **options)
        return [space_id for space_id, _ in seeds]

    # == requests: auth, quota, faults, log =======================================================

    def caller_for(self, authorization: str | None, address: str) -> Caller:
        """Resolve the Authorization header into a caller (the token value is only compared)."""
        if not authorization:
            return Caller(None, address=address)
        scheme, _, value = authorization.partition(" ")
        with self.lock:
            record = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        return Caller(record, bad_token=record is None, address=address)

    def count_request(self, caller: Caller) -> QuotaState:
        """Count one request against the caller's fixed window and return the quota figures."""
        key = caller.token.value if caller.token else f"address:{caller.address}"
        with self.lock:
            now = self.clock.now()
            window = self._windows.get(key)
            if window is None or now >= window.start + self.quota_window:
                window = self._windows[key] = _Window(now)
            window.used += 1
            reset = max(1, math.ceil(window.start + self.quota_window - now))
            remaining = max(0, self.quota - window.used)
            return QuotaState(self.quota, self.quota_window, remaining, reset, window.used > self.quota)

    def take_http_fault(
        self, kind: str, space_id: str | None, method: str, *, after_acting: bool = False
    ) -> Fault | None:
        """Use up one HTTP fault of ``kind`` that applies to this request, if any.

        ``after_acting`` picks, among ``drop`` faults, those that strike once the Hub has acted.
        """

        def matches(fault: Fault) -> bool:
            return (
                fault.applies_to(space_id, method) and bool(fault.options.get("after_acting")) == after_acting
            )

        with self.lock:
            return self.faults.take(kind, self.clock.now(), matches)

    def record(self, entry: dict[str, Any]) -> None:
        """Append one request to the log."""
        with self.lock:
            self.log.append(entry)

    def now(self) -> float:
        """Return the emulated time."""
        return self.clock.now()

    # == Hub API ==================================================================================

    def whoami(self, caller: Caller) -> dict[str, Any]:
        """Answer ``GET /api/whoami-v2``: the owner, its orgs and the token's role (never the token)."""
        token = self._require_token(caller)
        with self.lock:
            can_pay = token.owner not in self.no_payment
        return {
            "type": "user",
            "id": f"user-{token.owner}",
            "name": token.owner,
            "fullname": token.owner,
            "isPro": False,
            "canPay": can_pay,
            "orgs": [{"type": "org", "name": org, "fullname": org} for org in token.orgs],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": f"emulator {token.role} token", "role": token.role},
            },
        }

    def hardware_catalog(self) -> list[dict[str, Any]]:
        """Answer ``GET /api/spaces/hardware``: the flavors on offer (see ``offers``), priced per minute."""
        entries = []
        with self.lock:
            flavors = self._catalog()
        for flavor in flavors:
            per_minute = flavor.usd_per_minute if flavor.usd_per_hour else 0.0
            cpu, ram = _MACHINES.get(flavor.name, ("n/a", "n/a"))
            accelerator = None
            if flavor.accelerator:
                accelerator = {
                    "type": "gpu",
                    "model": flavor.accelerator.upper(),
                    "quantity": str(flavor.gpus),
                    "vram": "n/a",
                    "manufacturer": "Nvidia",
                }
            entries.append(
                {
                    "name": flavor.name,
                    "prettyName": flavor.pretty_name,
                    "cpu": cpu,
                    "ram": ram,
                    "accelerator": accelerator,
                    "unitCostMicroUSD": round(per_minute * 1_000_000),
                    "unitCostUSD": round(per_minute, 6),
                    "unitLabel": "minute",
                }
            )
        return entries

    def offers(self, flavor: str) -> bool:
        """Tell whether a hardware request for ``flavor`` is accepted.

        The flavors on offer are the built-in catalog's and those priced with ``set_price`` for
        every Space, which is how a test emulates a flavor the Hub added after this package's table.
        Seeding a Space (``add_space``) takes any flavor: it describes a Space, it asks for nothing.
        """
        with self.lock:
            return flavor in KNOWN_FLAVORS or flavor in self.prices

    def space_info(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``GET /api/spaces/{id}``: repo info with the runtime under ``runtime``."""
        with self.lock:
            space = self._visible(caller, space_id)
            runtime = space.runtime()
            return {
                "_id": hashlib.sha1(space_id.encode()).hexdigest()[:24],
                "id": space_id,
                "author": space.namespace,
                "sdk": space.sdk,
                "private": space.private,
                "disabled": False,
                "gated": False,
                "likes": 0,
                "tags": [],
                "createdAt": iso(space.created_at),
                "lastModified": iso(space.created_at),
                "subdomain": runtime["domains"][0]["domain"].split(".", 1)[0],
                "host": "https://" + runtime["domains"][0]["domain"],
                "runtime": runtime,
            }

    def get_runtime(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``GET .../runtime``."""
        with self.lock:
            return self._visible(caller, space_id).runtime()

    def request_hardware(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../hardware``: requested at once, current after the rebuild."""
        with self.lock:
            space, now = self._changing(caller, space_id, "hardware")
            self._refuse_static(space, "request hardware")
            flavor = _field(body, "flavor", str, required=True)
            self._check_flavor(flavor)
            self._check_refusal("hardware", space_id, flavor)
            self._check_capacity(space_id, flavor)
            self._check_payment(space.namespace, flavor)
            sleep_time = _field(body, "sleepTimeSeconds", int, required=False)
            if sleep_time is not None:
                _check_sleep_time(flavor, sleep_time)

            moves = flavor != space.requested and space.stage != PAUSED
            outcome = self.faults.build_outcome(space_id, flavor, now, build=True) if moves else OK
            space.request_hardware(now, flavor, outcome)
            if sleep_time is not None:
                space.sleep_time = sleep_time
            return space.runtime()

    def set_sleep_time(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../sleeptime`` (paid hardware only)."""
        with self.lock:
            space, _ = self._changing(caller, space_id, "sleeptime")
            self._refuse_static(space, "set a sleep time")
            seconds = _field(body, "seconds", int, required=True)
            _check_sleep_time(space.requested, seconds)
            space.sleep_time = seconds
            return space.runtime()

    def pause(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``POST .../pause``: paused at once; pausing a paused Space changes nothing."""
        with self.lock:
            space, now = self._changing(caller, space_id, "pause")
            self._refuse_static(space, "pause")
            if space.stage != PAUSED:
                space.pause(now)
            return space.runtime()

    def restart(self, caller: Caller, space_id: str, *, factory: bool) -> dict[str, Any]:
        """Answer ``POST .../restart``, a factory reboot with ``factory``."""
        with self.lock:
            space, now = self._changing(caller, space_id, "restart")
            self._refuse_static(space, "restart")
            build = factory or not (space.stage in SERVING_STAGES and space.current == space.requested)
            outcome = self.faults.build_outcome(space_id, space.requested, now, build=build)
            space.restart(now, factory=factory, outcome=outcome)
            return space.runtime()

    def set_dev_mode(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../dev-mode``."""
        with self.lock:
            space, _ = self._changing(caller, space_id, "dev-mode")
            self._refuse_static(space, "use dev mode")
            space.dev_mode = _field(body, "enabled", bool, required=True)
            return space.runtime()

    def upsert_secret(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../secrets``: add or update a secret, which restarts the app."""
        with self.lock:
            space, now = self._changing(caller, space_id, "secrets")
            key, entry = _keyed_entry(body, now)
            space.secrets[key] = entry
            # A secret reaches the app only through a restart, as on the Hub.
            space.restart_app(now, self.faults.build_outcome(space_id, space.current, now, build=False))
            return {}

    def delete_secret(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``DELETE .../secrets``; an unknown key is not an error."""
        with self.lock:
            space, now = self._changing(caller, space_id, "secrets")
            key = _field(body, "key", str, required=True)
            if space.secrets.pop(key, None) is not None:
                space.restart_app(now, self.faults.build_outcome(space_id, space.current, now, build=False))
            return {}

    def list_secrets(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``GET .../secrets``: keys and metadata, never values."""
        with self.lock:
            space = self._owned(caller, space_id)
            return {key: _public(entry, with_value=False) for key, entry in space.secrets.items()}

    def list_variables(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``GET .../variables``."""
        with self.lock:
            space = self._visible(caller, space_id)
            return {key: _public(entry, with_value=True) for key, entry in space.variables.items()}

    def upsert_variable(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../variables`` with the whole map after the change."""
        with self.lock:
            space, now = self._changing(caller, space_id, "variables")
            key, entry = _keyed_entry(body, now)
            previous = space.variables.get(key)
            space.variables[key] = entry
            # Variables reach the app as environment variables, so a changed value restarts it,
            # as on the Hub; writing the same value again changes nothing.
            if previous is None or previous.get("value") != entry.get("value"):
                space.restart_app(now, self.faults.build_outcome(space_id, space.current, now, build=False))
            return {key: _public(entry, with_value=True) for key, entry in space.variables.items()}

    def delete_variable(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``DELETE .../variables`` with the whole map; an unknown key is a no-op."""
        with self.lock:
            space, now = self._changing(caller, space_id, "variables")
            if space.variables.pop(_field(body, "key", str, required=True), None) is not None:
                space.restart_app(now, self.faults.build_outcome(space_id, space.current, now, build=False))
            return {key: _public(entry, with_value=True) for key, entry in space.variables.items()}

    def request_storage(self, caller: Caller, space_id: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../storage``; a smaller tier than the current one is refused."""
        with self.lock:
            space, _ = self._changing(caller, space_id, "storage")
            self._refuse_static(space, "attach storage")
            tier = _field(body, "tier", str, required=True)
            if tier not in STORAGE_TIERS:
                raise HubProblem(
                    400, "BadRequest", f"Unknown storage tier {tier!r}: use small, medium or large"
                )
            if space.storage is not None and STORAGE_TIERS.index(tier) < STORAGE_TIERS.index(space.storage):
                raise HubProblem(
                    400,
                    "BadRequest",
                    f"Cannot downgrade storage from {space.storage} to {tier}: delete the storage first "
                    "(its data is lost)",
                )
            self._check_payment(space.namespace, "storage")
            space.storage = tier
            return space.runtime()

    def delete_storage(self, caller: Caller, space_id: str) -> dict[str, Any]:
        """Answer ``DELETE .../storage``; 400 when there is none."""
        with self.lock:
            space, _ = self._changing(caller, space_id, "storage")
            if space.storage is None:
                raise HubProblem(400, "BadRequest", "This Space has no persistent storage to delete")
            space.storage = None
            return space.runtime()

    def duplicate(self, caller: Caller, space_id: str, body: Any, base_url: str) -> dict[str, Any]:
        """Answer ``POST .../duplicate`` with the new Space's URL; 409 (with the URL) when it exists."""
        with self.lock:
            source = self._visible(caller, space_id)
            token = self._require_write_role(caller)
            target = _field(body, "repository", str, required=True)
            if not _SPACE_ID.match(target):
                raise HubProblem(
                    400, "BadRequest", f"Invalid target repository id {target!r}: use namespace/name"
                )
            url = f"{base_url.rstrip('/')}/spaces/{target}"
            namespace = target.split("/", 1)[0]
            if namespace not in token.namespaces:
                raise HubProblem(
                    403,
                    "Forbidden",
                    f"You cannot create a Space in namespace {namespace!r}: the token owns only "
                    f"{', '.join(sorted(token.namespaces))}",
                )
            self._check_refusal("duplicate", space_id, None)
            if target in self.spaces:
                raise HubProblem(409, "RepoExists", f"Repository {target} already exists", extra={"url": url})
            self._create_duplicate(source, target, body)
            return {"url": url}

    def logs(self, caller: Caller, space_id: str, kind: str) -> list[dict[str, str]]:
        """Return the build or run log events of a Space, oldest first."""
        with self.lock:
            space = self._visible(caller, space_id)
            return [{"data": text + "\n", "timestamp": iso(at)} for at, k, text in space.events if k == kind]

    # == internals ================================================================================

    def _add_token_locked(self, value: str, owner: str, role: str, orgs: tuple[str, ...]) -> None:
        self.tokens[value] = TokenRecord(value, owner, role, orgs)

    def _space(self, space_id: str | None) -> Space:
        space = self.spaces.get(space_id or "")
        if space is None:
            raise UnknownSpaceError(f"the emulator has no Space {space_id!r}")
        return space

    def _advanced(self, space: Space, now: float | None = None) -> Space:
        space.advance(self.clock.now() if now is None else now)
        return space

    def _require_token(self, caller: Caller) -> TokenRecord:
        if caller.bad_token:
            raise HubProblem(401, "InvalidCredentials", BAD_TOKEN_MESSAGE)
        if caller.token is None:
            raise HubProblem(
                401, "MissingCredentials", "A token is required: send it as 'Authorization: Bearer <token>'"
            )
        return caller.token

    def _require_write_role(self, caller: Caller) -> TokenRecord:
        token = self._require_token(caller)
        if token.role != "write":
            raise HubProblem(
                401,
                "ReadOnlyToken",
                f"This token of {token.owner} has the role 'read', which cannot change a Space: use a token "
                "with the 'write' role",
            )
        return token

    def _visible(self, caller: Caller, space_id: str) -> Space:
        token = self._require_token(caller)
        space = self.spaces.get(space_id)
        if space is None or (space.private and space.namespace not in token.namespaces):
            raise HubProblem(404, "RepoNotFound", "Repository not found")
        return self._advanced(space)

    def _owned(self, caller: Caller, space_id: str) -> Space:
        space = self._visible(caller, space_id)
        self._check_owner(self._require_token(caller), space)
        return space

    def _changing(self, caller: Caller, space_id: str, action: str) -> tuple[Space, float]:
        # Order of refusals: unseen Space (404), read-only token (401), not the owner (403).
        space = self._visible(caller, space_id)
        self._check_owner(self._require_write_role(caller), space)
        if action != "hardware":
            # Hardware refusals may depend on the flavor, so that route checks once it has it.
            self._check_refusal(action, space_id, None)
        now = self.clock.now()
        space.advance(now)
        space.touch(now)
        return space, now

    @staticmethod
    def _check_owner(token: TokenRecord, space: Space) -> None:
        if space.namespace not in token.namespaces:
            raise HubProblem(
                403,
                "Forbidden",
                f"You are not allowed to manage Space {space.space_id}: it belongs to {space.namespace!r}, "
                f"not to {token.owner!r} or its organizations",
            )

    def _check_refusal(self, action: str, space_id: str, flavor: str | None) -> None:
        def matches(fault: Fault) -> bool:
            wanted = fault.options["flavor"]
            return (
                fault.options["action"] == action
                and fault.applies_to(space_id)
                and (wanted is None or wanted == flavor)
            )

        fault = self.faults.take("refuse", self.clock.now(), matches)
        if fault is not None:
            status = int(fault.options["status"])
            default_code = (
                "QuotaExceeded" if status == 403 else ("ServerError" if status >= 500 else "Refused")
            )
            message = fault.options["message"] or f"The Hub refused to {action} Space {space_id} (emulated)"
            raise HubProblem(status, fault.options["code"] or default_code, message)

    def _check_capacity(self, space_id: str, flavor: str) -> None:
        def refusing(fault: Fault) -> bool:
            return (
                fault.options["refuse"] and fault.options["flavor"] == flavor and fault.applies_to(space_id)
            )

        fault = self.faults.take("no_capacity", self.clock.now(), refusing)
        if fault is not None:
            message = fault.options["message"] or f"No capacity available for hardware {flavor} right now"
            raise HubProblem(int(fault.options["status"]), "NoCapacity", message)

    def _check_flavor(self, flavor: str) -> None:
        if _FLAVOR.match(flavor) and self.offers(flavor):
            return
        with self.lock:
            names = [entry.name for entry in self._catalog()]
        raise HubProblem(
            400,
            "BadRequest",
            f"Invalid hardware flavor {flavor[:100]!r}: the available flavors are {', '.join(names)}",
        )

    def _catalog(self) -> list[Flavor]:
        extra = [
            Flavor(name, name, usd_per_hour, None)
            for name, usd_per_hour in sorted(self.prices.items())
            if name not in KNOWN_FLAVORS
        ]
        return [*KNOWN_FLAVORS.values(), *extra]

    def _check_payment(self, namespace: str, flavor: str) -> None:
        if namespace in self.no_payment and (flavor == "storage" or is_paid_flavor(flavor)):
            raise HubProblem(
                403,
                "PaymentRequired",
                f"{namespace!r} has no payment method: add one in the billing settings to use {flavor}",
            )

    @staticmethod
    def _refuse_static(space: Space, action: str) -> None:
        if space.is_static:
            raise HubProblem(
                400, "BadRequest", f"Cannot {action} on a static Space: it always runs and is never billed"
            )

    @staticmethod
    def _check_space_id(space_id: str) -> None:
        if not isinstance(space_id, str) or not _SPACE_ID.match(space_id):
            raise ValueError(f"space_id must look like 'namespace/name', not {space_id!r}")

    @staticmethod
    def _timings(
        build: float | None, start: float | None, schedule: float | None, factory: float | None
    ) -> Timings:
        defaults = Timings()
        timings = Timings(
            build_seconds=defaults.build_seconds if build is None else float(build),
            start_seconds=defaults.start_seconds if start is None else float(start),
            schedule_seconds=defaults.schedule_seconds if schedule is None else float(schedule),
            factory_build_seconds=None if factory is None else float(factory),
        )
        timings.validate()
        return timings

    def _new_space(
        self, space_id: str, *, sdk: str, private: bool, hardware: str | None, now: float
    ) -> Space:
        requested = None if sdk == STATIC_SDK else hardware
        return Space(
            space_id=space_id,
            sdk=sdk,
            private=private,
            stage=BUILDING,
            current=None,
            requested=requested,
            since=now,
            created_at=now,
            last_activity=now,
        )

    def _seed_stage(self, space: Space, stage: str, error_message: str | None, now: float) -> None:
        build = stage == BUILDING
        outcome = OK
        if not space.is_static and stage in (BUILDING, APP_STARTING):
            outcome = self.faults.build_outcome(space.space_id, space.requested, now, build=build)
        space.seed_stage(now, stage, error_message, outcome)

    def _space_ledger(self, space: Space, now: float) -> dict[str, Any]:
        overrides = {**self.prices, **space.price_overrides}
        intervals = []
        minutes: dict[str, float] = {}
        usd = 0.0
        unpriced: set[str] = set()
        for interval in space.ledger_intervals():
            rate = price_per_minute(interval.flavor, overrides)
            entry = interval.to_dict(now, rate)
            intervals.append(entry)
            if interval.billed and interval.flavor is not None:
                minutes[interval.flavor] = minutes.get(interval.flavor, 0.0) + interval.minutes(now)
                usd += entry["usd"]
                if rate is None:
                    unpriced.add(interval.flavor)
        return {
            "space_id": space.space_id,
            "intervals": intervals,
            "billed_minutes": {flavor: round(value, 6) for flavor, value in minutes.items()},
            "usd": round(usd, 6),
            "unpriced_flavors": sorted(unpriced),
        }

    def _create_duplicate(self, source: Space, target: str, body: Any) -> None:
        hardware = _field(body, "hardware", str, required=False) or FREE_FLAVOR
        self._check_flavor(hardware)
        namespace = target.split("/", 1)[0]
        self._check_payment(namespace, hardware)
        sleep_time = _field(body, "sleepTimeSeconds", int, required=False)
        if sleep_time is not None:
            _check_sleep_time(hardware, sleep_time)
        storage = _field(body, "storageTier", str, required=False)
        if storage is not None and storage not in STORAGE_TIERS:
            raise HubProblem(
                400, "BadRequest", f"Unknown storage tier {storage!r}: use small, medium or large"
            )
        private = _visibility(body, default=source.private)
        now = self.clock.now()
        variables = {key: dict(entry) for key, entry in source.variables.items()}
        for key, entry in _keyed_list(body, "variables", now):
            variables[key] = entry
        secrets = dict(_keyed_list(body, "secrets", now))

        space = self._new_space(target, sdk=source.sdk, private=private, hardware=hardware, now=now)
        space.timings = source.timings
        space.sleep_time = sleep_time
        space.storage = storage
        space.variables = variables
        space.secrets = secrets
        self._seed_stage(space, RUNNING if space.is_static else BUILDING, None, now)
        self.spaces[target] = space

    @staticmethod
    def _fill_map(target: dict[str, dict[str, Any]], values: Mapping[str, str] | None, now: float) -> None:
        for key, value in (values or {}).items():
            target[key] = {"value": value, "updatedAt": iso(now)}


# == body helpers =================================================================================


def _field(body: Any, name: str, kind: type, *, required: bool) -> Any:
    """Read one field of a JSON object body, answering 400 when it is missing or of the wrong type."""
    if not isinstance(body, dict):
        if required:
            raise HubProblem(400, "BadRequest", f"Expected a JSON object with {name!r}")
        return None
    value = body.get(name)
    if value is None:
        if required:
            raise HubProblem(400, "BadRequest", f"Missing required field {name!r}")
        return None
    # bool is an int in Python; a sleep time of true is still nonsense.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise HubProblem(400, "BadRequest", f"Field {name!r} must be of type {kind.__name__}")
    return value


def _keyed_entry(body: Any, now: float) -> tuple[str, dict[str, Any]]:
    key = _field(body, "key", str, required=True)
    if not _KEY.match(key):
        raise HubProblem(400, "BadRequest", f"Invalid key {key!r}: use letters, digits and underscores")
    value = _field(body, "value", str, required=False)
    entry: dict[str, Any] = {"value": value if value is not None else "", "updatedAt": iso(now)}
    description = _field(body, "description", str, required=False)
    if description is not None:
        entry["description"] = description
    return key, entry


def _keyed_list(body: Any, name: str, now: float) -> list[tuple[str, dict[str, Any]]]:
    items = _field(body, name, list, required=False) or []
    return [_keyed_entry(item, now) for item in items]


def _public(entry: Mapping[str, Any], *, with_value: bool) -> dict[str, Any]:
    shown = {k: v for k, v in entry.items() if k != "value"}
    if with_value:
        shown["value"] = entry.get("value")
    return shown


def _visibility(body: Any, *, default: bool) -> bool:
    visibility = _field(body, "visibility", str, required=False)
    if visibility is not None:
        if visibility not in ("public", "private", "protected"):
            raise HubProblem(400, "BadRequest", f"Invalid visibility {visibility!r}")
        return bool(visibility == "private")
    private = _field(body, "private", bool, required=False)
    return default if private is None else bool(private)


def _check_sleep_time(flavor: str | None, seconds: int) -> None:
    if seconds != -1 and seconds <= 0:
        raise HubProblem(
            400, "BadRequest", f"Invalid sleep time {seconds}: use a positive number of seconds or -1"
        )
    if flavor == ZERO_GPU:
        raise HubProblem(400, "BadRequest", "ZeroGPU Spaces do not support a custom sleep time")
    if not is_paid_flavor(flavor):
        raise HubProblem(
            400,
            "BadRequest",
            f"Sleep time can only be set on upgraded hardware; {flavor or 'this Space'} sleeps after 48 hours "
            "of inactivity",
        )
