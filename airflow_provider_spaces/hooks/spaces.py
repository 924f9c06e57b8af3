"""The Airflow hook for Hugging Face Spaces: an Airflow connection in, a configured Hub client out.

DAG files import this module (through the operators) on every parse, so it imports no HTTP stack:
the Hub client, and ``requests`` with it, is imported the first time a client is built.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_spaces import __version__
from airflow_provider_spaces._compat import (
    AIRFLOW_VERSION,
    AirflowNotFoundException,
    afind_connection,
    amask_secret,
    find_connection,
    mask_secret,
)
from airflow_provider_spaces._provider_info import (
    CONNECTION_TYPE,
    EXTRA_FIELDS,
    HIDDEN_FIELDS,
    INTEGRATION,
    PLACEHOLDERS,
    RELABELING,
)
from airflow_provider_spaces.hooks.connection import (
    HubSettings,
    settings_from_connection,
    settings_from_environment,
)
from airflow_provider_spaces.hub.catalog import is_paid_flavor, known_flavor
from airflow_provider_spaces.hub.errors import SpaceWaitTimeout
from airflow_provider_spaces.hub.models import SpaceStage
from airflow_provider_spaces.hub.validation import validate_seconds, validate_stages
from airflow_provider_spaces.hub.waiting import StageTracker, check_stage

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from airflow.sdk import Connection

    from airflow_provider_spaces.hub.aio import AsyncSpacesClient
    from airflow_provider_spaces.hub.client import SpacesClient
    from airflow_provider_spaces.hub.models import (
        DuplicateResult,
        HardwareInfo,
        SpaceRuntime,
        SpaceSecret,
        SpaceVariable,
        WhoAmI,
    )
    from airflow_provider_spaces.hub.protocol import SecretOrVariable

__all__ = ["USER_AGENT", "SpacesHook", "wait_timeout_error"]

# The connection lookups in flight, per event loop and connection id (see aget_settings).
_LOOKUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future[HubSettings]]] = (
    weakref.WeakKeyDictionary()
)

USER_AGENT = f"airflow-provider-spaces/{__version__} airflow/{AIRFLOW_VERSION}"


class SpacesHook(BaseHook):
    """Call the Hugging Face Hub's Space endpoints with the settings of an Airflow connection.

    The connection (type ``huggingface_spaces``) holds the token in its password, the Hub endpoint
    in its host and timeouts and retries in its extras; see
    :mod:`airflow_provider_spaces.hooks.connection` for every field. When the connection id is the
    default, ``huggingface_default``, and no such connection exists, the hook falls back to what
    the Hugging Face tools use: the token in ``$HF_TOKEN`` (or the token file) and ``$HF_ENDPOINT``.
    Any other connection id must exist.

    Creating the hook reads nothing and sends nothing; the connection is read on first use, and
    the token is registered with Airflow's secrets masker as soon as it is read.

    :param spaces_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "spaces_conn_id"
    default_conn_name = "huggingface_default"
    conn_type = CONNECTION_TYPE
    hook_name = INTEGRATION

    # The clock and the pause of the wait loop; tests replace them to check the loop's bounds.
    _monotonic = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def __init__(self, spaces_conn_id: str = default_conn_name, *, logger_name: str | None = None) -> None:
        super().__init__(logger_name=logger_name)
        self.spaces_conn_id = spaces_conn_id
        self._settings: HubSettings | None = None
        self._client: SpacesClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spaces_conn_id={self.spaces_conn_id!r})"

    # -- settings and client ------------------------------------------------------------------

    def get_settings(self) -> HubSettings:
        """Return the endpoint, token, timeouts and retries of this hook's connection.

        :raises AirflowNotFoundException: a connection named other than the default does not exist.
        :raises InvalidConnectionError: the connection's host or extras are malformed.
        """
        if self._settings is None:
            conn = find_connection(self.spaces_conn_id)
            settings = self._settings_for(conn)
            if settings.token:
                mask_secret(settings.token)
            self._settings = settings
        return self._settings

    async def aget_settings(self) -> HubSettings:
        """Return the same settings as :meth:`get_settings`, from a coroutine (a trigger).

        Hooks of one connection that ask at the same time on one event loop share one lookup: a
        triggerer that starts a thousand waits at once reads the connection once, not a thousand
        times through its supervisor (each lookup also holds a worker thread while it waits).
        Nothing is kept after the lookup ends, so a changed connection is seen by the next wait.
        """
        if self._settings is None:
            lookups = _LOOKUPS.setdefault(asyncio.get_running_loop(), {})
            lookup = lookups.get(self.spaces_conn_id)
            if lookup is None:
                lookup = lookups[self.spaces_conn_id] = asyncio.ensure_future(self._read_settings())
                lookup.add_done_callback(lambda _: lookups.pop(self.spaces_conn_id, None))
            # Shielded: one waiting hook cancelled (its trigger stopped) must not cancel the others' lookup.
            self._settings = await asyncio.shield(lookup)
        return self._settings

    async def _read_settings(self) -> HubSettings:
        conn = await afind_connection(self.spaces_conn_id)
        # Reading the environment may read the token file: keep that off the event loop.
        settings = await asyncio.to_thread(self._settings_for, conn)
        if settings.token:
            await amask_secret(settings.token)
        return settings

    def _settings_for(self, conn: Connection | None) -> HubSettings:
        """Read ``conn``, or the Hugging Face environment when the default connection is missing."""
        if conn is not None:
            return settings_from_connection(conn)
        if self.spaces_conn_id != self.default_conn_name:
            raise AirflowNotFoundException(
                f"Connection {self.spaces_conn_id!r} is not defined. Create it (type "
                f"{CONNECTION_TYPE!r}: the token in the password, the Hub endpoint in the host), "
                f"or leave the connection id at {self.default_conn_name!r} to use $HF_TOKEN."
            )

        settings = settings_from_environment()
        self.log.info(
            "Connection %r is not defined; using %s: endpoint %s, %s",
            self.spaces_conn_id,
            settings.source,
            settings.endpoint,
            "with a token" if settings.token else "without a token",
        )
        return settings

    def get_client(self) -> SpacesClient:
        """Return this hook's Hub client, built on first use from the connection."""
        if self._client is None:
            self._client = self._build_client(self.get_settings())
        return self._client

    def get_conn(self) -> SpacesClient:
        """Return the Hub client (Airflow's usual name for :meth:`get_client`)."""
        return self.get_client()

    def close(self) -> None:
        """Close the client's connection pool, if a client was built."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def _build_client(settings: HubSettings) -> SpacesClient:
        """Build a client from ``settings``, counting its calls in the token's shared budget."""
        # Imported here, not at the top: it brings requests, which DAG parsing must not pay for.
        from airflow_provider_spaces.hub.client import SpacesClient
        from airflow_provider_spaces.hub.pacing import shared_budget

        options = _client_options(settings)
        budget = shared_budget(
            settings.endpoint,
            settings.token,
            quota=settings.rate_limit_quota,
            window_seconds=settings.rate_limit_window,
        )
        return SpacesClient(endpoint=settings.endpoint, token=settings.token, budget=budget, **options)

    def aclient(self) -> AbstractAsyncContextManager[AsyncSpacesClient]:
        """Return a context that yields an asynchronous client for a trigger, on the event loop's pool.

        ``async with hook.aclient() as client`` reads the connection without blocking the loop;
        the client counts its calls in the same per-token budget as every other client of this
        process.
        """
        # Imported here: httpx is only needed where a trigger runs.
        from airflow_provider_spaces.hub.aio import PooledClient

        return PooledClient.reading(self._pooled_client_settings)

    async def _pooled_client_settings(self) -> dict[str, Any]:
        """Return :func:`~airflow_provider_spaces.hub.aio.pooled_client`'s keywords for this connection."""
        settings = await self.aget_settings()
        return {
            "endpoint": settings.endpoint,
            "token": settings.token,
            "quota": settings.rate_limit_quota,
            "window_seconds": settings.rate_limit_window,
            **_client_options(settings),
        }

    # -- the Hub's Space calls, as the operators, sensor and trigger use them ----------------
    # Each passes straight through to the client method of the same name; see SpacesClient for
    # what each call does, retries and raises.

    def get_space_runtime(self, space_id: str, *, paced: bool = False) -> SpaceRuntime:
        """Return the runtime of a Space; ``paced`` waits for the token's turn first (wait loops)."""
        return self.get_client().get_space_runtime(space_id, paced=paced)

    def request_space_hardware(
        self, space_id: str, hardware: str, *, sleep_time: int | None = None
    ) -> SpaceRuntime:
        """Ask the Hub to move a Space to ``hardware`` (requested now, arrived later)."""
        return self.get_client().request_space_hardware(space_id, hardware, sleep_time=sleep_time)

    def set_space_sleep_time(self, space_id: str, sleep_time: int) -> SpaceRuntime:
        """Set the idle seconds after which a Space on paid hardware sleeps (-1: never)."""
        return self.get_client().set_space_sleep_time(space_id, sleep_time)

    def pause_space(self, space_id: str) -> SpaceRuntime:
        """Pause a Space: it stops, and stops billing, until restarted."""
        return self.get_client().pause_space(space_id)

    def restart_space(self, space_id: str, *, factory_reboot: bool = False) -> SpaceRuntime:
        """Restart a Space; a paused one starts building."""
        return self.get_client().restart_space(space_id, factory_reboot=factory_reboot)

    def add_space_secret(
        self, space_id: str, key: str, value: str, *, description: str | None = None
    ) -> None:
        """Add or update a secret of a Space; the value is masked in Airflow's logs from here on."""
        mask_secret(value)
        self.get_client().add_space_secret(space_id, key, value, description=description)

    def delete_space_secret(self, space_id: str, key: str) -> None:
        """Delete a secret of a Space; a key that does not exist is no error."""
        self.get_client().delete_space_secret(space_id, key)

    def get_space_secrets(self, space_id: str) -> dict[str, SpaceSecret]:
        """Return the keys and metadata of a Space's secrets (never their values)."""
        return self.get_client().get_space_secrets(space_id)

    def get_space_variables(self, space_id: str) -> dict[str, SpaceVariable]:
        """Return the variables of a Space by key."""
        return self.get_client().get_space_variables(space_id)

    def add_space_variable(
        self, space_id: str, key: str, value: str, *, description: str | None = None
    ) -> dict[str, SpaceVariable]:
        """Add or update a variable of a Space; return all its variables after the change."""
        return self.get_client().add_space_variable(space_id, key, value, description=description)

    def delete_space_variable(self, space_id: str, key: str) -> dict[str, SpaceVariable]:
        """Delete a variable of a Space; return all its variables after the change."""
        return self.get_client().delete_space_variable(space_id, key)

    def duplicate_space(
        self,
        from_id: str,
        to_id: str,
        *,
        visibility: str | None = None,
        private: bool | None = None,
        hardware: str | None = None,
        storage: str | None = None,
        sleep_time: int | None = None,
        secrets: SecretOrVariable | None = None,
        variables: SecretOrVariable | None = None,
        exist_ok: bool = False,
    ) -> DuplicateResult:
        """Copy a Space to ``to_id``; the secret values passed are masked in Airflow's logs."""
        for value in _secret_values(secrets):
            mask_secret(value)
        return self.get_client().duplicate_space(
            from_id,
            to_id,
            visibility=visibility,
            private=private,
            hardware=hardware,
            storage=storage,
            sleep_time=sleep_time,
            secrets=secrets,
            variables=variables,
            exist_ok=exist_ok,
        )

    def list_space_hardware(self) -> list[HardwareInfo]:
        """Return the hardware flavors the Hub offers for Spaces, with prices."""
        return self.get_client().list_space_hardware()

    def whoami(self) -> WhoAmI:
        """Return whom the token belongs to and its role."""
        return self.get_client().whoami()

    # -- waiting ------------------------------------------------------------------------------

    def wait_for_stage(
        self,
        space_id: str,
        *,
        target_stages: Iterable[str] = (SpaceStage.RUNNING,),
        hardware: str | None = None,
        timeout: float,
        poll_interval: float,
        runtime: SpaceRuntime | None = None,
        leaving: str | None = None,
    ) -> SpaceRuntime:
        """Read the runtime every ``poll_interval`` seconds until the Space is in a target stage.

        With ``hardware``, the Space must also run on that flavor (arrival, not the request). Each
        change of stage or hardware is logged once, with the time it took; each read only at debug
        level. ``runtime``, when given, is a fresh read (a POST's answer) used as the first one.

        ``leaving`` is the stage the Space was in when the caller asked the Hub to move it (a
        hardware request or a restart of a failed, paused or sleeping Space). The Hub's first
        answers may still show that stage; until the Space shows another one, that stage does not
        end the wait. The timeout still does, should the Hub never move it.

        :return: the runtime that reached the target.
        :raises SpaceStageError: the Space is in an error stage, or in one that cannot lead to the
            target (paused, another flavor requested, ...); raised at the first read showing it.
        :raises SpaceWaitTimeout: ``timeout`` seconds passed first; the message names the last stage.
        """
        targets = validate_stages(target_stages)
        limit = validate_seconds(timeout, argument="timeout")
        pause = validate_seconds(poll_interval, argument="poll_interval")

        tracker = StageTracker()
        started = self._monotonic()
        # Paced: the reads of a wait take their turn in the token's budget (``hub.pacing``).
        current = runtime if runtime is not None else self.get_space_runtime(space_id, paced=True)
        while True:
            elapsed = self._monotonic() - started
            check = check_stage(current, target_stages=targets, hardware=hardware)
            self._log_progress(tracker, check.message, current, elapsed)
            if check.reached:
                return current
            if leaving is not None and str(current.stage) != leaving:
                leaving = None
            if leaving is None:
                check.raise_if_failed()

            left = limit - elapsed
            if left <= 0:
                raise _wait_timeout(current, targets, hardware, elapsed)
            # Never sleep past the deadline: the last read happens at it, not a poll later.
            self._sleep(min(pause, left))
            current = self.get_space_runtime(space_id, paced=True)

    def _log_progress(
        self, tracker: StageTracker, detail: str, runtime: SpaceRuntime, elapsed: float
    ) -> None:
        line = tracker.observe(runtime, elapsed)
        if line is not None:
            self.log.info("%s", line)
        else:
            self.log.debug("%s", detail)

    # -- connection test ----------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Ask the Hub whom the token belongs to; return whether that worked and what it said.

        Airflow shows the message in the connection form. It never contains the token.
        """
        try:
            settings = self.get_settings()
            if not settings.token:
                return (
                    False,
                    f"No token: put a Hugging Face access token in the password of {settings.source}.",
                )
            identity = self.whoami()
        except Exception as error:
            # Any failure is a failed test to show the user, not an error page.
            return False, self.redact(f"{type(error).__name__}: {error}")

        role = identity.token_role or "unknown"
        return True, f"Connected to {settings.endpoint} as {identity.name} (token role: {role})"

    def redact(self, text: str) -> str:
        """Return ``text`` with this hook's token, once read, replaced by ``***``.

        The client's errors already leave the token out; this covers anything else raised.
        """
        token = self._settings.token if self._settings else None
        return text.replace(token, "***") if token else text

    # -- connection form (Airflow 3.1; 3.2 and later read it from the provider info) -----------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form, for Airflow 3.1.

        Airflow 3.2 and later read the same fields from the provider info and never call this.
        Airflow 3.1 builds every provider's form with ``wtforms`` and asks the hook only when that
        package imports (it comes with the FAB provider, or alone); this needs nothing more, so
        that installing ``wtforms`` on the api-server is enough to show the fields.
        """
        from wtforms import IntegerField
        from wtforms.validators import Optional

        return {
            name: IntegerField(extra.label, validators=[Optional()], description=extra.description)
            for name, extra in EXTRA_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return which standard fields the form hides, relabels and prefills, for Airflow 3.1."""
        return {
            "hidden_fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": dict(PLACEHOLDERS),
        }


def _client_options(settings: HubSettings) -> dict[str, Any]:
    """Return the client options ``settings`` set; what the connection leaves unset keeps its default."""
    from airflow_provider_spaces.hub.retry import RetryPolicy

    options: dict[str, Any] = {"user_agent": USER_AGENT}
    if settings.connect_timeout is not None:
        options["connect_timeout"] = settings.connect_timeout
    if settings.read_timeout is not None:
        options["read_timeout"] = settings.read_timeout

    retry: dict[str, Any] = {}
    if settings.max_retries is not None:
        retry["max_attempts"] = settings.max_retries + 1
    if settings.max_retry_wait is not None:
        retry["total_timeout"] = settings.max_retry_wait
    options["retry"] = RetryPolicy(**retry)
    return options


def _wait_timeout(
    runtime: SpaceRuntime, targets: frozenset[str], hardware: str | None, waited: float
) -> SpaceWaitTimeout:
    return wait_timeout_error(
        runtime.space_id,
        last_stage=str(runtime.stage),
        url=runtime.url,
        targets=targets,
        hardware=hardware,
        waited=waited,
    )


def wait_timeout_error(
    space_id: str,
    *,
    last_stage: str | None,
    url: str | None,
    targets: Iterable[str],
    hardware: str | None,
    waited: float,
) -> SpaceWaitTimeout:
    """Return the error of a wait that ran out of time, for a poke loop and a deferred wait alike."""
    goal = " or ".join(sorted(str(stage) for stage in targets)) + (f" on {hardware}" if hardware else "")
    hint = f"See the Space's logs at {url or 'its page on the Hub'}; if its build is only slow, allow a longer timeout."
    if hardware is not None and is_paid_flavor(hardware):
        # The wait failing does not undo the request: the Space goes on towards the paid flavor.
        flavor = known_flavor(hardware)
        price = f" at ${flavor.usd_per_hour:.2f}/h" if flavor and flavor.usd_per_hour else ""
        hint += (
            f" {hardware} stays requested and is billed{price} once the Space starts on it:"
            " only a downgrade or a pause stops that (the GPU window's teardown does it)."
        )
    return SpaceWaitTimeout(
        space_id=space_id, last_stage=last_stage, waited_seconds=waited, target=goal, hint=hint
    )


def _secret_values(secrets: SecretOrVariable | None) -> list[str]:
    """Return the values in a mapping of secrets, or in a list of ``{key, value}`` entries."""
    if secrets is None:
        return []
    if isinstance(secrets, Mapping):
        return [str(value) for value in secrets.values() if value]
    return [str(entry["value"]) for entry in secrets if entry.get("value")]
