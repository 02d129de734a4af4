"""Typed, thread-safe httpx client for the IBKR Client Portal Web API (CP Gateway): pacing, retries,
typed errors and session priming. Parsing lives in ``parsing*``; this module only does I/O.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time as _time
from collections.abc import Iterable
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from include.ibkr import errors as E
from include.ibkr import parsing as P
from include.ibkr.client.marketdata import DEFAULT_SNAPSHOT_FIELDS as DEFAULT_SNAPSHOT_FIELDS
from include.ibkr.client.marketdata import MarketDataMixin
from include.ibkr.client.trading import TradingMixin
from include.ibkr.models import AuthStatus, BrokerageAccounts, Contract, TickleResponse
from include.ibkr.parsing import account as PA
from include.ibkr.ratelimit import DEFAULT_ENDPOINT_LIMITS, RateLimiter, shared_limiter
from include.tls import verify_option

log = logging.getLogger("include.ibkr.client")


class _MaskAccountIds(logging.Filter):
    """httpx logs every request URL at INFO ("HTTP Request: POST .../iserver/account/DU1234567/orders"): the
    account id in it is masked like everywhere else in task logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(E.mask_account_ids(str(a)) if isinstance(a, (str, httpx.URL)) else a
                                for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
        return True


if not any(isinstance(f, _MaskAccountIds) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_MaskAccountIds())

_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_RETRY_STATUS = (502, 503, 504)
# Exceptions that prove the request never reached the gateway: safe to retry even for orders.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _should_retry(exc: BaseException, idempotent: bool) -> bool:
    if isinstance(exc, E.RateLimitedError):
        return True  # 429: the gateway refused the request before acting on it
    if isinstance(exc, E.GatewayServerError):
        # Never for orders: a 5xx may come after the order was accepted; the cOID plus the caller's
        # reconciliation (live orders by cOID) decide, not a blind resubmission.
        return idempotent and exc.status_code in _RETRY_STATUS
    if isinstance(exc, E.GatewayUnreachableError):
        # A read timeout on an order is ambiguous (it may have been placed): only retry unsent requests.
        return idempotent or isinstance(exc.__cause__, _NOT_SENT)
    return False


class IBKRClient(MarketDataMixin, TradingMixin):
    """One keep-alive ``httpx.Client`` shared by all threads; every call is paced by a ``RateLimiter``."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = False,
        timeout: float = 15.0,
        account_id: str | None = None,
        rate_per_sec: float | None = 10.0,
        max_concurrent_history: int = 5,
        endpoint_pacing: bool = True,
        retries: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        accepted_questions: Iterable[str] | None = None,
        suppress_accepted_questions: bool = False,
        shared_pacing: bool = False,
        pacing_dsn: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # The real gateway uses a self-signed cert (§1): verify=False, or a CA bundle path to pin it; True checks
        # against the system's CAs (the process's shared context: include/tls.py).
        ssl_verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify_option(verify)
        )
        self._http = httpx.Client(
            base_url=self.base_url, verify=ssl_verify, timeout=timeout, transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"Accept": "application/json", "User-Agent": "ibkr-airflow-trading/1"},
        )  # fmt: skip
        # shared_pacing: this process's other clients of the gateway share the windows (the hook's clients do);
        # pacing_dsn: so do other processes and hosts, through the pacing ledger in that PostgreSQL database.
        pacing = {"max_concurrent_history": max_concurrent_history,
                  "endpoint_limits": DEFAULT_ENDPOINT_LIMITS if endpoint_pacing else ()}
        self.limiter = (shared_limiter(self.base_url, rate_per_sec, **pacing, ledger_dsn=pacing_dsn)
                        if shared_pacing or pacing_dsn else RateLimiter(rate_per_sec, **pacing))  # fmt: skip
        self._retries, self._backoff_initial, self._backoff_max = retries, backoff_initial, backoff_max
        self._configured_account = account_id
        self._lock = threading.RLock()
        self._order_lock = threading.Lock()
        self._contracts: dict[str, Contract] = {}
        self._accounts: BrokerageAccounts | None = None
        self._server_name: str | None = None
        self._portfolio_primed = False
        self._live_orders_seen = False
        self.primed = False  # True once /iserver/accounts answered in this client's session (§7.1)
        self._counts = {"requests": 0, "retries": 0}
        # Order warnings confirmed by policy (None: include/config/order_questions.py); see TradingMixin.
        self.set_question_policy(accepted_questions, suppress=suppress_accepted_questions)

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IBKRClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        url = httpx.URL(self.base_url)
        shown = url.copy_with(username=None, password=None) if url.userinfo else url
        acct = self._configured_account
        masked = f"{acct[:2]}***{acct[-2:]}" if acct else None
        return f"IBKRClient(base_url={str(shown)!r}, account_id={masked!r})"

    # ------------------------------------------------------------ request core
    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        json: Any = None, idempotent: bool = True, raw: bool = False,
    ) -> Any:  # fmt: skip
        """The decoded JSON answer; with ``raw`` the body as bytes (for a caller that decodes it faster itself)."""
        try:
            return self._send_with_retries(method, path, params, json, idempotent, raw)
        except E.NotPrimedError:
            if path == "/iserver/accounts":
                raise
            # §3.4: after the nightly reset /iserver/* answers 500 until /iserver/accounts is queried.
            # The 500 means the request was not acted on, so one retry is safe even for orders.
            log.log(
                logging.WARNING if self.primed else logging.INFO,  # lost (the nightly reset) or never primed
                "IBKR %s %s: session not primed; querying /iserver/accounts and retrying once", method, path,
            )
            self.accounts()
            return self._send_with_retries(method, path, params, json, idempotent, raw)

    def _send_with_retries(
        self, method: str, path: str, params: Any, json: Any, idempotent: bool, raw: bool = False,
    ) -> Any:  # fmt: skip
        retryer = Retrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential_jitter(
                initial=self._backoff_initial, max=self._backoff_max, jitter=self._backoff_initial
            ),
            retry=retry_if_exception(lambda exc: _should_retry(exc, idempotent)),
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        return retryer(self._send_once, method, path, params, json, idempotent, raw)

    def stats(self) -> dict[str, int]:
        """Counters for logs and benchmarks: HTTP requests sent, retries, limiter waits, history peak."""
        with self._lock:
            counts = dict(self._counts)
        limiter = self.limiter
        return {**counts, "waits": limiter.waits, "history_max_inflight": limiter.history_max_inflight}

    def _log_retry(self, method: str, path: str, state: RetryCallState) -> None:
        with self._lock:
            self._counts["retries"] += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "IBKR %s %s failed (%s: %s); retry %d/%d in %.2fs",
            method, E.mask_account_ids(path), type(exc).__name__, exc, state.attempt_number, self._retries, wait,
        )  # fmt: skip

    def _send_once(
        self, method: str, path: str, params: Any, json: Any, idempotent: bool, raw: bool = False,
    ) -> Any:  # fmt: skip
        url = f"{self.base_url}{path}"
        with self.limiter.acquire(path):
            with self._lock:
                self._counts["requests"] += 1
            try:
                resp = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                msg = None
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    msg = (
                        f"no complete answer from the IBKR gateway at {url} ({reason}). The request may "
                        "have reached IBKR: check live orders by cOID before resubmitting"
                    )
                raise E.GatewayUnreachableError(url, reason, message=msg, endpoint=path) from exc
        if resp.status_code >= 400:
            raise P.parse_error(resp.status_code, resp.text, path)
        if raw:
            return resp.content
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise P.malformed(path, f"invalid JSON (HTTP {resp.status_code})", resp.text) from None

    # ------------------------------------------------------------ session (§2, §7.1)
    def auth_status(self) -> AuthStatus:
        status = PA.parse_auth_status(self._request("POST", "/iserver/auth/status"))
        if status.server_name:
            self._server_name = status.server_name
        return status

    def tickle(self) -> TickleResponse:
        return PA.parse_tickle(self._request("POST", "/tickle"))

    def reauthenticate(self) -> Any:
        return self._request("POST", "/iserver/reauthenticate")

    def init_brokerage_session(self) -> AuthStatus:
        payload = self._request("POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
        return PA.parse_auth_status(payload, "/iserver/auth/ssodh/init")

    def ensure_session(self, *, try_reauth: bool = True, reauth_wait_s: float = 2.0, prime: bool = True) -> AuthStatus:
        """Check the brokerage session, start it once if needed, then prime it with /iserver/accounts.

        ``prime=False`` leaves the priming to the first /iserver request that needs it (``_request`` queries
        /iserver/accounts and retries once on "Please query /accounts first"): one request less for a task that
        only reads market data from a session the keepalive and other tasks keep primed."""
        status = self.auth_status()  # 401 -> NotAuthenticatedError: a human must log in at the gateway
        if status.competing:
            # Do not take the session over automatically: that would log the trader out of TWS/mobile.
            raise E.CompetingSessionError(endpoint="/iserver/auth/status")
        if not (status.authenticated and status.connected) and try_reauth:
            try:
                self.init_brokerage_session()
            except E.NotAuthenticatedError:
                raise
            except E.IBKRError as exc:
                log.warning("ssodh/init failed (%s); trying /iserver/reauthenticate", exc)
                self.reauthenticate()
            deadline = _time.monotonic() + reauth_wait_s
            while True:  # the brokerage bridge takes a moment to come up: poll it for up to reauth_wait_s
                _time.sleep(min(0.25, max(deadline - _time.monotonic(), 0.0)))
                status = self.auth_status()
                if status.competing:
                    raise E.CompetingSessionError(endpoint="/iserver/auth/status")
                if (status.authenticated and status.connected) or _time.monotonic() >= deadline:
                    break
        if not (status.authenticated and status.connected):
            detail = f" (gateway says {status.message!r})" if status.message else ""
            raise E.NoBridgeError(
                f"{E.NoBridgeError.default_message}{detail}", endpoint="/iserver/auth/status", status_code=200
            )
        if prime:
            self.accounts()
        return status

    def accounts(self) -> BrokerageAccounts:
        accounts = PA.parse_accounts(self._request("GET", "/iserver/accounts"))
        with self._lock:
            self._accounts = accounts
            self.primed = True
            self._server_name = accounts.server_name or self._server_name
        return accounts

    @property
    def account_id(self) -> str:
        if self._configured_account:
            return self._configured_account
        accounts = self._accounts or self.accounts()
        acct = accounts.selected_account or (accounts.accounts[0] if accounts.accounts else None)
        if not acct:
            raise E.NoBridgeError(
                "the gateway lists no brokerage accounts yet: finish logging in at the gateway"
            )
        return acct

    @property
    def server_name(self) -> str | None:
        return self._server_name

    # ------------------------------------------------------------ contracts (§4)
    def resolve_contract(self, symbol: str) -> Contract:
        sym = symbol.strip().upper()
        if not _SYMBOL_RE.match(sym):
            raise E.UnknownSymbolError(symbol, "not a valid ticker")
        with self._lock:
            if sym in self._contracts:
                return self._contracts[sym]
        try:
            payload = self._request("GET", "/iserver/secdef/search", params={"symbol": sym, "secType": "STK"})
            contract = PA.parse_secdef_search(payload, sym)
        except (E.UnknownSymbolError, E.BadRequestError) as exc:
            log.info("secdef/search has no STK hit for %s (%s); falling back to /trsrv/stocks", sym, exc)
            contract = PA.parse_trsrv_stocks(
                self._request("GET", "/trsrv/stocks", params={"symbols": sym}), sym
            )
        with self._lock:
            return self._contracts.setdefault(sym, contract)

    def remember_contracts(self, contracts: Iterable[Contract]) -> None:
        """Seed the conid cache (e.g. from ``raw.contracts``): those symbols are not looked up again."""
        with self._lock:
            for contract in contracts:
                self._contracts.setdefault(contract.symbol.strip().upper(), contract)

    def cached_contract(self, symbol: str) -> Contract | None:
        with self._lock:
            return self._contracts.get(symbol.strip().upper())

    def resolve_contracts(self, symbols: Iterable[str]) -> dict[str, Contract]:
        return {s.strip().upper(): self.resolve_contract(s) for s in symbols}
