"""What the synchronous and the asynchronous Hub clients share around one exchange with the Hub.

The clients differ only in how bytes travel (``requests`` or ``httpx``) and how they wait (a
thread sleeping or a coroutine awaiting); the headers they send, the retry loop they follow and
the way an answer is read, counted in the token's budget and turned into a result or an error are
one piece of code, here. No HTTP library is imported.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping

from airflow_provider_spaces.hub.errors import RateLimitedError
from airflow_provider_spaces.hub.models import RateLimitState
from airflow_provider_spaces.hub.pacing import PollBudget, report_to_budget
from airflow_provider_spaces.hub.protocol import HubAnswer, HubCall, read_answer, resolve_endpoint
from airflow_provider_spaces.hub.retry import RetryLoop, RetryPolicy, parse_rate_limit

__all__ = ["HubExchange"]

log = logging.getLogger(__name__)


class HubExchange:
    """Hold a client's endpoint, token, retry policy and budget, and read the Hub's answers."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        token: str | None,
        retry: RetryPolicy | None,
        user_agent: str,
        budget: PollBudget | None,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self._token = (token or "").strip() or None
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent
        self.budget = budget
        self._clock = clock
        self._rng = rng
        self._rate_limit: RateLimitState | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, authenticated={self.authenticated})"

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

    def redact(self, text: str) -> str:
        """Return ``text`` with this client's token replaced by ``***``.

        The client's own errors never hold the token; this is for text from anywhere else.
        """
        return text.replace(self._token, "***") if self._token else text

    def _retry_loop(self, call: HubCall) -> RetryLoop:
        """Return the attempts ``call`` gets, as the policy and the call's idempotency allow."""
        return RetryLoop(
            self.retry,
            action=call.action,
            space_id=call.space_id,
            idempotent=call.idempotent,
            clock=self._clock,
            rng=self._rng,
            held_for=self.budget.held_for if self.budget is not None else None,
        )

    def _count_in_budget(self, *, paced: bool) -> float:
        """Count one call in the budget; return how long a call that is not paced must wait first.

        A paced call waits for its turn on its own (``acquire``); any other call goes at once,
        unless the Hub answered 429 a moment ago: then it waits what the Hub asked, as the budget's
        log line says.
        """
        if self.budget is None or paced:
            return 0.0
        self.budget.take()
        return self.budget.held_for()

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _read(self, call: HubCall, status: int, headers: Mapping[str, str], body: bytes) -> HubAnswer:
        """Return the answer to ``call``, or raise its error, after telling the budget what it said."""
        log.debug("%s %s -> %d (request id %s)", call.method, call.path, status, headers.get("X-Request-Id"))
        state = parse_rate_limit(headers)
        if state is not None:
            self._rate_limit = state
        try:
            answer = read_answer(
                status,
                headers,
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
