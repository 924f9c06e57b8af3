"""The guard's task: find Spaces that cost money with nobody responsible for them, and stop that.

A GPU window leases its Space (see :mod:`~airflow_provider_spaces.leases`). The guard looks at
every Space it is told about and every Space that ever had a lease, and acts on two findings:

- the lease has **expired** and the Space may still cost money: the window's run died, or its
  teardown could not put the Space back;
- the Space sits on **paid hardware with no lease**: nobody is responsible for the bill.

"May cost money" means running or starting on paid hardware, on its way there by itself, or
asleep with paid hardware requested (the next visitor wakes it up on that hardware). A paused
Space costs nothing until someone restarts it, so it is left alone.

By policy the guard moves such a Space to ``cpu-basic`` (pausing it when the Hub refuses, or
when a downgrade was asked for already and the Space still bills), pauses it, or only reports it.
A dry run decides the same and sends nothing. Every finding is logged with the flavor's price per
hour and, for an expired lease, what the Space cost since the lease was taken; the task returns
them all. The run fails when it leaves a Space that may still cost money (an action the Hub
refused, a Space it could not read), so that someone hears of it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_spaces._compat import AirflowException
from airflow_provider_spaces.hooks.spaces import SpacesHook
from airflow_provider_spaces.hub.catalog import FREE_FLAVOR, is_paid_flavor
from airflow_provider_spaces.hub.costs import HourlyPrice, PriceList
from airflow_provider_spaces.hub.errors import HubError, InvalidArgumentError
from airflow_provider_spaces.hub.models import SpaceRuntime, SpaceStage
from airflow_provider_spaces.hub.validation import validate_flag, validate_flavor, validate_space_id
from airflow_provider_spaces.hub.waiting import describe_state, is_billing, will_bill
from airflow_provider_spaces.leases import Lease, LeaseStore

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "POLICIES",
    "Finding",
    "SpaceGuardOperator",
    "Verdict",
    "assess",
    "may_cost_money",
    "validate_policy",
]

POLICIES = ("downgrade", "pause", "report")


class Verdict(str, Enum):
    """What the guard makes of one Space."""

    FREE = "free"  # costs nothing and nobody holds it
    LEASED = "leased"  # held by an unexpired lease: the window is responsible
    EXPIRED = "expired_lease"  # the lease ran out and the Space may still cost money
    STALE = "stale_lease"  # the lease ran out and the Space costs nothing: the lease is cleared
    UNLEASED = "unleased_paid"  # may cost money and nobody holds it
    UNREADABLE = "unreadable"  # the Hub could not say where the Space is

    def __str__(self) -> str:
        return str(self.value)


def may_cost_money(runtime: SpaceRuntime) -> bool:
    """Tell whether a Space costs money, will by itself, or will when a visitor wakes it up."""
    asleep_on_paid = runtime.stage == SpaceStage.SLEEPING and is_paid_flavor(
        None if runtime.requested_hardware is None else str(runtime.requested_hardware)
    )
    return is_billing(runtime) or will_bill(runtime) or asleep_on_paid


def assess(runtime: SpaceRuntime, lease: Lease | None, now: datetime) -> Verdict:
    """Judge one Space from its runtime and its lease (None: it has none)."""
    costs = may_cost_money(runtime)
    if lease is not None and not lease.expired(now):
        return Verdict.LEASED
    if lease is not None:
        return Verdict.EXPIRED if costs else Verdict.STALE
    return Verdict.UNLEASED if costs else Verdict.FREE


def _paid_flavor(runtime: SpaceRuntime) -> str | None:
    for flavor in (runtime.hardware, runtime.requested_hardware):
        if flavor is not None and is_paid_flavor(str(flavor)):
            return str(flavor)
    return None


@dataclass
class Finding:
    """One Space as the guard found it, and what it did about it."""

    space_id: str
    verdict: Verdict
    state: str
    lease: Lease | None = None
    price: HourlyPrice | None = None
    action: str = "none"
    outcome: str = ""
    money_may_run: bool = False

    def accrued_usd(self, now: datetime) -> float | None:
        """Return the estimated cost since the lease was taken, when there is a lease and a price."""
        if self.lease is None or self.price is None or self.price.usd_per_hour is None:
            return None
        return self.price.usd_per_hour * self.lease.minutes_held(now) / 60.0

    def describe(self, now: datetime) -> str:
        """Write the finding as one log line."""
        text = f"Space {self.space_id}: {self.verdict}"
        if self.lease is not None:
            when = "expires" if not self.lease.expired(now) else "expired"
            text += f" (lease of {self.lease.holder}, {when} {self.lease.expires_at.isoformat(timespec='seconds')})"
        text += f"; {self.state}"
        if self.price is not None:
            text += f", at {self.price.describe()}"
            accrued = self.accrued_usd(now)
            if accrued is not None:
                text += f", about ${accrued:.2f} since the lease was taken"
        if self.action != "none":
            text += f"; {self.action}: {self.outcome}"
        return text

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """Return the finding as JSON-friendly values (XCom)."""
        accrued = self.accrued_usd(now)
        overdue = None
        if self.lease is not None and self.lease.expired(now):
            overdue = round((now - self.lease.expires_at).total_seconds() / 60.0, 2)
        return {
            "space_id": self.space_id,
            "verdict": str(self.verdict),
            "state": self.state,
            "lease": self.lease.to_dict() if self.lease is not None else None,
            "minutes_past_lease": overdue,
            "hardware": self.price.flavor if self.price is not None else None,
            "usd_per_hour": self.price.usd_per_hour if self.price is not None else None,
            "price_source": self.price.source if self.price is not None else None,
            "usd_since_lease": None if accrued is None else round(accrued, 4),
            "action": self.action,
            "outcome": self.outcome,
            "money_may_run": self.money_may_run,
        }


class SpaceGuardOperator(BaseOperator):
    """Put back every watched Space that costs money with an expired lease or no lease at all.

    The Spaces watched are ``spaces`` and every Space that ever had a lease. See the module's
    docstring for what counts as costing money and what each policy does.

    :param spaces: Spaces to watch besides those that had a lease, ``namespace/name`` (templated).
    :param policy: ``downgrade`` (default), ``pause`` or ``report``.
    :param dry_run: decide and report, but send nothing and leave the leases alone.
    :param hardware: the flavor a downgrade goes to (default ``cpu-basic``, which is free).
    :param spaces_conn_id: the Airflow connection to the Hub (type ``huggingface_spaces``).
    :return: ``policy``, ``dry_run``, ``findings`` (one dict per Space: verdict, state, lease,
        price per hour, estimated cost since the lease, action, outcome, whether money may still
        run), ``usd_per_hour_stopped`` and ``usd_per_hour_left_running``.
    """

    template_fields: Sequence[str] = ("spaces",)
    ui_color = "#fde2e2"

    def __init__(
        self,
        *,
        spaces: Collection[str] = (),
        policy: str = "downgrade",
        dry_run: bool = False,
        hardware: str = FREE_FLAVOR,
        spaces_conn_id: str = SpacesHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spaces = list(spaces) if not isinstance(spaces, str) else spaces
        self.policy = validate_policy(policy)
        # Not ``dry_run``: BaseOperator has a method of that name.
        self.is_dry_run = validate_flag(dry_run, argument="dry_run")
        self.hardware = hardware
        self.spaces_conn_id = spaces_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Check every watched Space, act by policy, log and return what was found and done."""
        watched = self._validated_spaces()
        self.hardware = validate_flavor(self.hardware, argument="hardware")
        now = datetime.now(timezone.utc)
        store = LeaseStore()
        hook = SpacesHook(self.spaces_conn_id)
        try:
            prices = PriceList.read(hook.list_space_hardware)
            spaces = sorted({*watched, *store.known_spaces()})
            self.log.info(
                "Guarding %d Spaces (policy %s%s; prices from %s)",
                len(spaces),
                self.policy,
                ", dry run" if self.is_dry_run else "",
                prices.source,
            )
            findings = [self._check(hook, store, prices, space_id, now) for space_id in spaces]
        finally:
            hook.close()

        result = self._summary(findings, now)
        left = [finding for finding in findings if finding.money_may_run]
        if left and self.policy != "report" and not self.is_dry_run:
            # The findings are worth having even when the run fails.
            context["ti"].xcom_push(key="return_value", value=result)
            raise AirflowException(
                f"The guard left {len(left)} Space(s) that may still cost money: "
                + "; ".join(finding.describe(now) for finding in left)
            )
        return result

    def _validated_spaces(self) -> list[str]:
        spaces = [self.spaces] if isinstance(self.spaces, str) else list(self.spaces)
        return [validate_space_id(space_id, argument="spaces") for space_id in spaces]

    # -- one Space ----------------------------------------------------------------------------------

    def _check(
        self, hook: SpacesHook, store: LeaseStore, prices: PriceList, space_id: str, now: datetime
    ) -> Finding:
        try:
            runtime = hook.get_space_runtime(space_id)
        except HubError as error:
            finding = Finding(space_id, Verdict.UNREADABLE, f"unreadable ({error})", money_may_run=True)
            finding.lease = self._lease(store, space_id)
            self.log.error("%s", finding.describe(now))
            return finding

        # Read after the runtime: a window takes its lease before it asks for the GPU, so a Space
        # seen on paid hardware here and without a lease below is truly nobody's.
        lease = self._lease(store, space_id)
        verdict = assess(runtime, lease, now)
        flavor = _paid_flavor(runtime)
        finding = Finding(
            space_id,
            verdict,
            describe_state(runtime),
            lease=lease,
            price=prices.price(flavor) if flavor is not None else None,
        )
        if verdict in (Verdict.EXPIRED, Verdict.UNLEASED):
            self._bring_down(hook, store, runtime, finding)
        elif verdict is Verdict.STALE and not self.is_dry_run:
            store.release(space_id)
            finding.action, finding.outcome = "lease cleared", "the Space costs nothing"

        level = self.log.warning if finding.money_may_run or finding.action != "none" else self.log.info
        level("%s", finding.describe(now))
        return finding

    def _lease(self, store: LeaseStore, space_id: str) -> Lease | None:
        try:
            return store.get(space_id)
        except ValueError as error:
            self.log.warning("Space %s: ignoring its unreadable lease (%s)", space_id, error)
            return None

    def _bring_down(
        self, hook: SpacesHook, store: LeaseStore, runtime: SpaceRuntime, finding: Finding
    ) -> None:
        action = self._action_for(runtime)
        if self.policy == "report" or self.is_dry_run:
            finding.action = "reported" if self.policy == "report" else f"dry run, would {action}"
            finding.outcome = "nothing sent"
            finding.money_may_run = True
            return

        answer = self._send(hook, runtime.space_id, action, finding)
        if answer is None:
            finding.money_may_run = True
            return
        finding.outcome = f"now {describe_state(answer)}"
        # A downgrade the Hub accepted stops the bill once the Space rebuilds; the next run checks.
        moving_down = answer.requested_hardware == self.hardware
        finding.money_may_run = not (moving_down or answer.stage == SpaceStage.PAUSED)
        if finding.lease is not None and not finding.money_may_run:
            store.release(runtime.space_id)

    def _action_for(self, runtime: SpaceRuntime) -> str:
        if self.policy == "pause" or runtime.requested_hardware == self.hardware:
            # Asked to go down already and still costing: the downgrade is not landing.
            return "pause"
        return "downgrade"

    def _send(self, hook: SpacesHook, space_id: str, action: str, finding: Finding) -> SpaceRuntime | None:
        if action == "downgrade":
            try:
                finding.action = f"downgrade to {self.hardware} requested"
                return hook.request_space_hardware(space_id, self.hardware)
            except HubError as error:
                self.log.warning("Space %s: the downgrade failed (%s); pausing it instead", space_id, error)
        try:
            finding.action = "paused" if action == "pause" else "downgrade refused, paused instead"
            return hook.pause_space(space_id)
        except HubError as error:
            finding.action += " (failed)"
            finding.outcome = str(error)
            return None

    # -- the run --------------------------------------------------------------------------------

    def _summary(self, findings: list[Finding], now: datetime) -> dict[str, Any]:
        def hourly(chosen: list[Finding]) -> float:
            return round(sum(f.price.usd_per_hour or 0.0 for f in chosen if f.price is not None), 4)

        acted = [f for f in findings if f.verdict in (Verdict.EXPIRED, Verdict.UNLEASED)]
        stopped = [f for f in acted if not f.money_may_run]
        left = [f for f in findings if f.money_may_run]
        counts = {str(verdict): 0 for verdict in Verdict}
        for finding in findings:
            counts[str(finding.verdict)] += 1
        self.log.info(
            "Guard done: %d Spaces checked (%s); %d brought down, $%.2f per hour stopped; %d may still "
            "cost money, $%.2f per hour",
            len(findings),
            ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count),
            len(stopped),
            hourly(stopped),
            len(left),
            hourly(left),
        )
        return {
            "policy": self.policy,
            "dry_run": self.is_dry_run,
            "checked_at": now.isoformat(),
            "findings": [finding.to_dict(now) for finding in findings],
            "usd_per_hour_stopped": hourly(stopped),
            "usd_per_hour_left_running": hourly(left),
        }


def validate_policy(policy: Any) -> str:
    """Return ``policy`` when it is one the guard knows."""
    if policy not in POLICIES:
        raise InvalidArgumentError("policy", f"must be one of {', '.join(POLICIES)}, not {policy!r}")
    return str(policy)
