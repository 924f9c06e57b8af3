"""The synchronous Hub client for Spaces, on one ``requests`` session.

Method names follow ``huggingface_hub``'s ``HfApi``. Every request has a timeout, carries the token
when one is set, is logged at debug level (method and path only), and goes through the retry
rules of :mod:`~airflow_provider_spaces.hub.retry`.

Which calls are repeated after a failure where the Hub may already have acted (read timeout,
connection dropped after sending, 500/502/504), and why:

=====================================  ======  =============================================
call                                   repeat  why
=====================================  ======  =============================================
every GET (runtime, secrets, ...)      yes     reading twice changes nothing
hardware, sleep time, pause, dev mode  yes     each sets a state; a repeat lands in it again
secret and variable upsert, delete     yes     the same key and value give the same result
restart (and factory reboot)           no      a second restart restarts the app again
duplicate                              no      settled by checking whether the target exists
storage request and delete (legacy)    no      a repeat after success is refused with 400
=====================================  ======  =============================================

When the Hub certainly did not act (connection refused, connect timeout, 429, 503), every call may
be repeated, within the policy's attempts and time budget.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from airflow_provider_spaces import __version__
from airflow_provider_spaces.hub import protocol
from airflow_provider_spaces.hub.catalog import KNOWN_FLAVORS
from airflow_provider_spaces.hub.errors import (
    BadRequestError,
    ConflictError,
    HubConnectionError,
    HubError,
    NotFoundError,
    RateLimitedError,
)
from airflow_provider_spaces.hub.models import (
    DuplicateResult,
    HardwareInfo,
    RateLimitState,
    SpaceInfo,
    SpaceRuntime,
    SpaceSecret,
    SpaceVariable,
    WhoAmI,
    space_url,
)
from airflow_provider_spaces.hub.pacing import PollBudget, report_to_budget
from airflow_provider_spaces.hub.protocol import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ENDPOINT,
    DEFAULT_READ_TIMEOUT,
    HubAnswer,
    HubCall,
    SecretOrVariable,
    check_timeout,
    resolve_endpoint,
)
from airflow_provider_spaces.hub.retry import (
    RetryLoop,
    RetryPolicy,
    may_have_acted,
    parse_rate_limit,
    short_reason,
)
from airflow_provider_spaces.hub.validation import suggest_flavor

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ENDPOINT",
    "DEFAULT_READ_TIMEOUT",
    "SpacesClient",
    "resolve_endpoint",
]

log = logging.getLogger(__name__)

_MAX_REASON = 200


class SpacesClient:
    """Manage Hugging Face Spaces through the Hub's HTTP API.

    :param endpoint: the Hub's base URL; ``$HF_ENDPOINT`` when unset, else https://huggingface.co.
    :param token: the Hub token sent as ``Authorization: Bearer``; None for anonymous calls (see
        :func:`airflow_provider_spaces.hub.auth.get_token` to find the saved one).
    :param connect_timeout: seconds to wait for a connection.
    :param read_timeout: seconds to wait for the Hub to answer once connected.
    :param retry: when and how long to retry; :class:`RetryPolicy` defaults when None.
    :param user_agent: the ``User-Agent`` header; names this package when None.
    :param session: a ``requests.Session`` to use; the client creates (and closes) its own when None.
    :param sleep: the function that waits between attempts (tests pass a fake).
    :param clock: a monotonic clock in seconds, for the retry time budget (tests pass a fake).
    :param rng: the random source of the backoff jitter.
    :param budget: the call budget of this token (see :func:`~airflow_provider_spaces.hub.pacing.shared_budget`):
        every call counts in it and reports the Hub's rate-limit headers to it, and the reads of a
        wait loop (``paced=True``) wait for their turn. None sends every call as it comes, and
        waits only once the Hub answers 429.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        budget: PollBudget | None = None,
    ) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self._token = (token or "").strip() or None
        self.timeout = (
            check_timeout(connect_timeout, "connect_timeout"),
            check_timeout(read_timeout, "read_timeout"),
        )
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = (
            user_agent or f"airflow-provider-spaces/{__version__} requests/{requests.__version__}"
        )
        self._owns_session = session is None
        self._session = session if session is not None else _new_session(self.endpoint)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._rate_limit: RateLimitState | None = None
        self.budget = budget

    def __repr__(self) -> str:
        return f"SpacesClient(endpoint={self.endpoint!r}, authenticated={self.authenticated})"

    @property
    def authenticated(self) -> bool:
        """Tell whether calls carry a token."""
        return self._token is not None

    @property
    def rate_limit(self) -> RateLimitState | None:
        """Return the rate-limit state from the latest answer that carried the headers.

        Without a ``budget`` the client only waits once the Hub answers 429; with one, every
        client of the token in this process paces its calls together (see ``hub.pacing``).
        """
        return self._rate_limit

    def close(self) -> None:
        """Release the connections, unless the session was handed in by the caller."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SpacesClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- runtime and settings ---------------------------------------------------------------

    def get_space_runtime(self, space_id: str, *, paced: bool = False) -> SpaceRuntime:
        """Return the runtime of a Space: stage, hardware, sleep time, storage.

        :param paced: wait for this token's turn in the ``budget`` first; for the reads of a wait
            loop, which are the many calls a budget has to spread out.
        """
        return self._runtime(protocol.runtime_call(space_id), paced=paced)

    def request_space_hardware(
        self, space_id: str, hardware: str, *, sleep_time: int | None = None
    ) -> SpaceRuntime:
        """Ask the Hub to move a Space to ``hardware``; the answer shows it requested, not arrived.

        :raises BadRequestError: the Hub refused the flavor (the message suggests a known one).
        """
        call = protocol.hardware_call(space_id, hardware, sleep_time=sleep_time)
        try:
            return self._runtime(call)
        except BadRequestError as error:
            _suggest_flavor(error, hardware)
            raise

    def set_space_sleep_time(self, space_id: str, sleep_time: int) -> SpaceRuntime:
        """Set the idle seconds after which a Space on paid hardware sleeps (-1: never)."""
        return self._runtime(protocol.sleep_time_call(space_id, sleep_time))

    def pause_space(self, space_id: str) -> SpaceRuntime:
        """Pause a Space: it stops, and stops billing, until restarted."""
        return self._runtime(protocol.pause_call(space_id))

    def restart_space(self, space_id: str, *, factory_reboot: bool = False) -> SpaceRuntime:
        """Restart a Space (a paused one starts building); never repeated blindly after a failure."""
        return self._runtime(protocol.restart_call(space_id, factory_reboot=factory_reboot))

    def enable_space_dev_mode(self, space_id: str) -> SpaceRuntime:
        """Turn on dev mode."""
        return self._runtime(protocol.dev_mode_call(space_id, enabled=True))

    def disable_space_dev_mode(self, space_id: str) -> SpaceRuntime:
        """Turn off dev mode."""
        return self._runtime(protocol.dev_mode_call(space_id, enabled=False))

    def request_space_storage(self, space_id: str, storage: str) -> SpaceRuntime:
        """Attach persistent storage of tier ``storage`` (legacy offer; a smaller tier is refused)."""
        return self._runtime(protocol.storage_call(space_id, storage))

    def delete_space_storage(self, space_id: str) -> SpaceRuntime:
        """Delete the persistent storage of a Space, and its data."""
        return self._runtime(protocol.delete_storage_call(space_id))

    # -- secrets and variables --------------------------------------------------------------

    def add_space_secret(
        self, space_id: str, key: str, value: str, *, description: str | None = None
    ) -> None:
        """Add or update a secret; its value is never logged nor shown in errors."""
        self._send(protocol.add_secret_call(space_id, key, value, description=description))

    def delete_space_secret(self, space_id: str, key: str) -> None:
        """Delete a secret; succeeds also when the key does not exist."""
        self._send(protocol.delete_secret_call(space_id, key))

    def get_space_secrets(self, space_id: str) -> dict[str, SpaceSecret]:
        """Return the secrets' keys and metadata (the Hub never returns values)."""
        payload = self._send(protocol.secrets_call(space_id)).payload
        return {key: SpaceSecret.from_payload(key, entry) for key, entry in _object(payload).items()}

    def get_space_variables(self, space_id: str) -> dict[str, SpaceVariable]:
        """Return the Space's variables by key."""
        return _variables(self._send(protocol.variables_call(space_id)).payload)

    def add_space_variable(
        self, space_id: str, key: str, value: str, *, description: str | None = None
    ) -> dict[str, SpaceVariable]:
        """Add or update a variable; return all variables after the change."""
        call = protocol.add_variable_call(space_id, key, value, description=description)
        return _variables(self._send(call).payload)

    def delete_space_variable(self, space_id: str, key: str) -> dict[str, SpaceVariable]:
        """Delete a variable (an unknown key is a no-op); return all variables after the change."""
        return _variables(self._send(protocol.delete_variable_call(space_id, key)).payload)

    # -- duplicate ----------------------------------------------------------------------------

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
        """Copy ``from_id`` to ``to_id``; variables are copied, secrets only from ``secrets``.

        :param visibility: ``public``, ``private`` or ``protected``; ``private`` is the older flag.
        :param secrets: a mapping of key to value, or a list of ``{key, value, description}``.
        :param variables: as ``secrets``.
        :param exist_ok: return the existing target (``created=False``) instead of failing.
        :raises ConflictError: the target exists and ``exist_ok`` is False.
        """
        call = protocol.duplicate_call(
            from_id,
            to_id,
            visibility=visibility,
            private=private,
            hardware=hardware,
            storage=storage,
            sleep_time=sleep_time,
            secrets=secrets,
            variables=variables,
        )
        try:
            answer = self._send(call)
        except ConflictError as error:
            if not exist_ok:
                raise
            log.info("Space %s already exists; keeping it (exist_ok)", to_id)
            return DuplicateResult(
                url=error.url or space_url(self.endpoint, to_id), space_id=to_id, created=False
            )
        except HubError as error:
            if not may_have_acted(error):
                raise
            return self._settle_duplicate(call, to_id, error)

        log.info("Space %s duplicated to %s", from_id, to_id)
        return DuplicateResult(
            url=_duplicate_url(answer.payload, self.endpoint, to_id), space_id=to_id, created=True
        )

    def _settle_duplicate(self, call: HubCall, to_id: str, failure: HubError) -> DuplicateResult:
        """Find out whether a duplicate that failed half-way created the target, and finish it."""
        log.warning(
            "Space %s: the duplicate may or may not have been made (%s); checking whether %s exists",
            call.space_id,
            short_reason(failure),
            to_id,
        )
        try:
            self.get_space_runtime(to_id)
        except NotFoundError:
            # Nothing was created, so sending the duplicate again cannot make a second copy.
            log.warning("Space %s does not exist; sending the duplicate again", to_id)
            return self._duplicate_again(call, to_id)
        except HubError as probe_error:
            failure.hint = (
                f"{failure.hint or ''} Could not check whether {to_id} was created ({short_reason(probe_error)}): "
                "look for it on the Hub before duplicating again."
            ).strip()
            raise failure from None

        # A target that existed before this call is misreported as made by it; telling the two
        # apart would take a read of the target before every duplicate.
        log.warning("Space %s exists now; counting it as made by this duplicate", to_id)
        return DuplicateResult(url=space_url(self.endpoint, to_id), space_id=to_id, created=True)

    def _duplicate_again(self, call: HubCall, to_id: str) -> DuplicateResult:
        try:
            answer = self._send(call)
        except ConflictError as error:
            # The first attempt landed after all; the target is the copy this call asked for.
            log.warning("Space %s appeared meanwhile: the first duplicate request made it", to_id)
            return DuplicateResult(
                url=error.url or space_url(self.endpoint, to_id), space_id=to_id, created=True
            )
        return DuplicateResult(
            url=_duplicate_url(answer.payload, self.endpoint, to_id), space_id=to_id, created=True
        )

    # -- account and catalog ------------------------------------------------------------------

    def list_space_hardware(self) -> list[HardwareInfo]:
        """Return the hardware flavors the Hub offers for Spaces, with prices."""
        payload = self._send(protocol.hardware_catalog_call()).payload
        entries = payload if isinstance(payload, list) else []
        return [info for entry in entries if (info := HardwareInfo.from_payload(entry)) is not None]

    # The name ``huggingface_hub`` uses for the same call.
    list_spaces_hardware = list_space_hardware

    def whoami(self) -> WhoAmI:
        """Return whom the token belongs to and its role: the cheap call to test a connection."""
        return WhoAmI.from_payload(self._send(protocol.whoami_call()).payload)

    def space_info(self, space_id: str) -> SpaceInfo:
        """Return the Space's repository information, with its runtime when the Hub includes it."""
        answer = self._send(protocol.space_info_call(space_id))
        return SpaceInfo.from_payload(
            space_id, answer.payload, endpoint=self.endpoint, request_id=answer.request_id
        )

    # -- sending ------------------------------------------------------------------------------

    def _runtime(self, call: HubCall, *, paced: bool = False) -> SpaceRuntime:
        answer = self._send(call, paced=paced)
        assert call.space_id is not None  # every runtime call is about one Space
        return SpaceRuntime.from_payload(
            call.space_id, answer.payload, endpoint=self.endpoint, request_id=answer.request_id
        )

    def _send(self, call: HubCall, *, paced: bool = False) -> HubAnswer:
        """Send ``call``, retrying as the policy and the call's idempotency allow.

        With a ``budget``, a ``paced`` call waits for its turn before each attempt; any other
        call goes at once and only counts, so that the paced ones make room for it.
        """
        attempts = RetryLoop(
            self.retry,
            action=call.action,
            space_id=call.space_id,
            idempotent=call.idempotent,
            clock=self._clock,
            rng=self._rng,
        )
        while True:
            try:
                return self._attempt(call, paced=paced)
            except HubError as error:
                delay = attempts.after_failure(error)
                if delay is None:
                    raise
            self._sleep(delay)

    def _attempt(self, call: HubCall, *, paced: bool) -> HubAnswer:
        """Send ``call`` once (in its turn of the budget when ``paced``) and read the whole answer."""
        if self.budget is not None:
            if paced:
                self.budget.acquire(self._sleep)
            else:
                self.budget.take()
        log.debug("%s %s", call.method, call.path)
        try:
            response = self._session.request(
                call.method,
                self.endpoint + call.path,
                params=call.params,
                json=call.body,
                headers=self._headers(),
                timeout=self.timeout,
            )
            body = response.content
        except requests.RequestException as error:
            raise _connection_error(call, error) from None

        log.debug(
            "%s %s -> %d (request id %s)",
            call.method,
            call.path,
            response.status_code,
            response.headers.get("X-Request-Id"),
        )
        state = parse_rate_limit(response.headers)
        if state is not None:
            self._rate_limit = state
        try:
            answer = protocol.read_answer(
                response.status_code,
                response.headers,
                body,
                call=call,
                authenticated=self.authenticated,
                redact=(self._token,) if self._token else (),
            )
        except RateLimitedError as error:
            report_to_budget(self.budget, state, error)
            raise
        report_to_budget(self.budget, state, None)
        return answer

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers


def _new_session(endpoint: str) -> requests.Session:
    """Create the client's own session, reading proxy and CA settings from the environment once.

    Left to itself, requests reads the whole environment again (proxies, CA bundle, ``.netrc``) on
    every request, which costs about as much as a loopback round trip. A client serves one task or
    one trigger, so the settings in force when it is built are the ones it keeps.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def _connection_error(call: HubCall, error: requests.RequestException) -> HubConnectionError:
    """Turn a transport failure into a :class:`HubConnectionError` that says whether the Hub acted."""
    reached = not _before_sending(error)
    if isinstance(error, requests.ReadTimeout):
        what = "the Hub did not answer within the read timeout"
    elif reached:
        what = "the connection broke before the whole answer arrived"
    else:
        what = "could not connect to the Hub"
    return HubConnectionError(
        f"{what} ({_root_cause(error)})",
        may_have_acted=reached,
        space_id=call.space_id,
        action=call.action,
    )


def _before_sending(error: requests.RequestException) -> bool:
    """Tell whether the request failed before a byte of it reached the Hub.

    requests wraps urllib3's failure: a connect timeout, a refused connection or an unknown host
    arrive as a ``MaxRetryError`` whose reason is a connect error; anything later (a read timeout,
    a connection reset while waiting) may come after the Hub received the request.

    A pooled connection that the Hub closes just as a request goes out also fails late and counts
    as "may have acted", so a restart or duplicate is then not repeated although it could be.
    urllib3 checks pooled connections before reuse, which keeps this to a narrow race; ruling it
    out would need the HTTP layer to say whether any byte of the request was written.
    """
    if isinstance(
        error, (requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.ProxyError)
    ):
        return True

    cause = error.args[0] if error.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ConnectTimeoutError)


def _root_cause(error: BaseException) -> str:
    cause: Any = error
    while True:
        inner = getattr(cause, "reason", None) or (cause.args[0] if cause.args else None)
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    text = str(cause) or type(cause).__name__
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "..."


def _suggest_flavor(error: BadRequestError, hardware: str) -> None:
    if hardware in KNOWN_FLAVORS:
        return
    suggestion = suggest_flavor(hardware)
    if suggestion:
        error.hint = f"{hardware!r} is not a flavor this package knows: did you mean {suggestion!r}? {error.hint or ''}"
        error.hint = error.hint.strip()


def _object(payload: Any) -> Mapping[str, Any]:
    return payload if isinstance(payload, Mapping) else {}


def _variables(payload: Any) -> dict[str, SpaceVariable]:
    return {key: SpaceVariable.from_payload(key, entry) for key, entry in _object(payload).items()}


def _duplicate_url(payload: Any, endpoint: str, to_id: str) -> str:
    url = _object(payload).get("url")
    return url if isinstance(url, str) and url else space_url(endpoint, to_id)
