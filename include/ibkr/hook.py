"""``IBKRHook``: builds an ``IBKRClient`` from the ``ibkr_default`` connection (or IBKR_GATEWAY_URL), plus the
workflow guide's calls (auth status, market data, positions, an order through the intent ledger)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseHook

from include.settings import IBKR_CONN_ID, Settings, gateway_url_from_connection, load_settings

if TYPE_CHECKING:
    from include.execution.models import IntentRecord
    from include.ibkr.client import IBKRClient
    from include.ibkr.models import AuthStatus, Position

DEFAULT_MARKET_FIELDS = ("last", "bid", "ask")


class IBKRHook(BaseHook):
    """Connection: type ``http``; host ``localhost`` (or a full URL), port 5000, schema ``https``;
    extra ``{"verify_ssl": false, "account_id": "DU123456", "base_path": "/v1/api"}``.

    For the default connection id, ``IBKR_GATEWAY_URL`` (if set) wins, as everywhere in the project.
    """

    conn_name_attr = "ibkr_conn_id"
    default_conn_name = IBKR_CONN_ID
    conn_type = "http"
    hook_name = "IBKR Client Portal gateway"

    def __init__(self, ibkr_conn_id: str = IBKR_CONN_ID, **client_kwargs: Any) -> None:
        super().__init__()
        self.ibkr_conn_id = ibkr_conn_id
        self.client_kwargs = client_kwargs

    def settings(self, base: Settings | None = None) -> Settings:
        settings = base or load_settings()
        if self.ibkr_conn_id == IBKR_CONN_ID:
            return settings
        url, extra = gateway_url_from_connection(self.get_connection(self.ibkr_conn_id))
        changes: dict[str, Any] = {"ibkr_gateway_url": url}
        if "verify_ssl" in extra:
            changes["ibkr_verify_ssl"] = bool(extra["verify_ssl"])
        if extra.get("account_id"):
            changes["ibkr_account_id"] = str(extra["account_id"])
        return replace(settings, **changes)

    def get_conn(self, settings: Settings | None = None) -> IBKRClient:
        """A client for this connection; pass ``settings`` already loaded to skip a second lookup."""
        from include.config.workflow import load_workflow
        from include.ibkr.client import IBKRClient

        s = self.settings(settings)
        backend = load_workflow().backend  # timeout and retries of workflow.yaml
        kwargs: dict[str, Any] = {
            "timeout": backend.timeout,
            "retries": backend.retry_attempts,
            "verify": s.ibkr_verify_ssl,
            "account_id": s.ibkr_account_id,
            "rate_per_sec": s.ibkr_rate_per_sec,
            "max_concurrent_history": s.ibkr_max_concurrent_history,
            "accepted_questions": s.ibkr_accepted_questions,
            "shared_pacing": True,  # tasks in one process (dag.test(), threads) pace the gateway together
            # ... and with every other task process and host, through the pacing ledger in the market database
            "pacing_dsn": s.require_market_db_url() if s.market_db_url else None,
        }
        kwargs.update(self.client_kwargs)
        return IBKRClient(s.require_gateway_url(), **kwargs)

    get_client = get_conn

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.get_conn() as client:
                status = client.auth_status()
        except Exception as exc:  # shown verbatim in the connection form's "Test" result
            return False, str(exc)
        return status.healthy, f"authenticated={status.authenticated} connected={status.connected} " \
            f"competing={status.competing} server={status.server_name}"

    # ------------------------------------------------------------ the workflow guide's calls
    def check_auth_status(self) -> AuthStatus:
        """The gateway's session status (``.healthy``: authenticated, connected, not competing); no reauth."""
        with self.get_conn() as client:
            return client.auth_status()

    def get_market_data(self, symbols: Iterable[str] | str,
                        fields: Sequence[str] = DEFAULT_MARKET_FIELDS) -> dict[str, dict[str, Any]]:
        """A snapshot per symbol: ``{"AAPL": {"last": 187.2, "bid": ..., "ask": ...}}``; ``fields`` are
        ``include.ibkr.models.Snapshot`` names (last, bid, ask, volume, quote_at, ...)."""
        from include.ibkr.models import Snapshot
        from include.settings import parse_symbols

        names = tuple(fields)
        unknown = [f for f in names if f not in Snapshot.model_fields]
        if unknown or not names:
            known = ", ".join(Snapshot.model_fields)
            raise ValueError(f"unknown market data field(s) {unknown or names}; known: {known}")
        with self.get_conn() as client:
            client.ensure_session()
            contracts = list(client.resolve_contracts(parse_symbols(symbols)).values())
            snapshots = client.snapshot(contracts)
        return {s.symbol: {name: getattr(s, name) for name in names} for s in snapshots}

    def get_portfolio_positions(self) -> list[Position]:
        """The account's positions (the connection's account, else the gateway's selected one)."""
        with self.get_conn() as client:
            client.ensure_session()
            return client.positions()

    def place_order(
        self, *, strategy_id: int | str, symbol: str, side: Literal["BUY", "SELL"], quantity: float,
        limit_price: float | None, dag_id: str, run_id: str, mode: Literal["dry_run", "paper", "live"] = "dry_run",
        session_date: date | None = None, ref_price: float | None = None, try_number: int = 1,
        mlflow_run_id: str | None = None, gate: Callable[[Any, IntentRecord], str | None] | None = None,
    ) -> IntentRecord:
        """One order as an intent of the ledger (``include.execution``): recorded before it is sent, cOID = intent
        id, at most one per (strategy, symbol, session, mode), so repeating the call never sends it twice.

        ``dry_run`` (the default) records it as simulated and touches no order endpoint; ``live`` also needs
        ALLOW_LIVE_TRADING=yes. ``limit_price`` None sends a market order. Risk limits are not applied here:
        trading DAGs place orders with ``OrderPlacementOperator`` (risk, then this ledger); ``gate`` is the
        executor's re-check right before submission (``include.trading.submission.SubmissionChecks``).
        Returns the intent's ledger row; raises ``OrderExecutionError`` when it is rejected or failed.
        """
        from include.execution import OrderPlan, RunContext, execute_intents
        from include.marketdata.calendar import MarketCalendar
        from include.trading.submission import decision_session

        settings = self.settings()
        dsn = settings.require_market_db_url()
        session = session_date or decision_session(MarketCalendar(settings.exchange), settings.now())
        plan = OrderPlan(strategy_id=strategy_id, symbol=symbol, side=side, quantity=quantity,
                         ref_price=ref_price or limit_price or 0.0, order_type="LMT" if limit_price else "MKT",
                         limit_price=limit_price, session_date=session)
        run = RunContext(dag_id=dag_id, run_id=run_id, mode=mode, try_number=try_number, mlflow_run_id=mlflow_run_id)
        if mode == "dry_run":
            report = execute_intents([plan], run, dsn=dsn, gate=gate)
        else:
            with self.get_conn(settings) as client:
                client.ensure_session()
                report = execute_intents([plan], run, dsn=dsn, broker=client, gate=gate)
        return next(i for i in report.intents if i.intent_id == plan.intent_id(run))
