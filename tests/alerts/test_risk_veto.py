"""The trading DAG's assess_risk task body raises one ``risk_veto`` alert per run listing the vetoed BUY/SELL
orders and their reasons, and none when only HOLDs (or approvals) came out of risk."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from include.strategies.base import Signal
from include.trading.context import FeatureSet, MarketView, Quote, SignalSet, TradingRun

SESSION = date(2026, 1, 5)

STRATEGY = """
version: 1
strategies:
  - id: 7
    name: veto_test
    symbols: [TSLA, NVDA, AAPL]
    schedule: "@daily"
    signal: {model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}
    risk: {max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2}
    mode: dry_run
"""
PRICES = {"TSLA": 250.0, "NVDA": 120.0, "AAPL": 200.0}


class _TaskInstance:
    """The one TaskInstance call the task body makes (its MLflow timing goes to XCom)."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


@pytest.fixture
def risk_run(clean_db, session_mlflow_uri, webhook_receiver, tmp_path, monkeypatch):
    from include.tracking import start_run

    (tmp_path / "strategies.yaml").write_text(STRATEGY)
    for key, value in {
        "MARKET_DB_URL": clean_db,
        "MLFLOW_TRACKING_URI": session_mlflow_uri,
        "STRATEGIES_FILE": str(tmp_path / "strategies.yaml"),
        "AIRFLOW_CONN_ALERTS_WEBHOOK": webhook_receiver.connection(),
    }.items():
        monkeypatch.setenv(key, value)

    def assess(signals: list[Signal], run_id: str, bad: dict[str, str] | None = None) -> dict:
        from include.trading import tasks

        mlflow_run_id = start_run(
            "ibkr-strategy-veto_test", dag_id="strategy_veto_test", run_id=run_id, tracking_uri=session_mlflow_uri
        )
        run = TradingRun(
            dag_id="strategy_veto_test", run_id=run_id, strategy_id=7, strategy="veto_test", mode="dry_run",
            symbols=tuple(PRICES), mlflow_run_id=mlflow_run_id, ignore_market_hours=True,
            started_at=datetime.now(UTC), session=SESSION, data_session=SESSION,
        )
        market = MarketView(
            run=run, account="DU…567", positions={}, working={}, net_liquidation=100_000.0,
            gross_position_value=0.0, quotes={s: Quote(last=p) for s, p in PRICES.items()},
        )
        features = FeatureSet(
            run=run, latest={s: {"close": p} for s, p in PRICES.items()}, previous={},
            verdicts={s: {"symbol": s, "verdict": "pass", "reasons": []} for s in PRICES}, bad=bad or {},
        )
        signal_set = SignalSet(run=run, signals=tuple(s.model_dump(mode="json") for s in signals))
        return tasks.assess_risk(signal_set, market, features, {"ti": _TaskInstance()}).model_dump(mode="json")

    return assess


def _signal(symbol: str, action: str, confidence: float) -> Signal:
    return Signal(
        symbol=symbol,
        action=action,
        confidence=confidence,
        rationale=f"test {action}",
        strategy_id=7,
        model="test",
        price_reference=PRICES[symbol],
        price_source="close",
    )


def test_vetoed_orders_raise_one_warning_alert(risk_run, webhook_receiver):
    report = risk_run(
        [_signal("TSLA", "BUY", 0.5), _signal("NVDA", "HOLD", 0.2), _signal("AAPL", "BUY", 0.9)], run_id="manual__veto"
    )
    statuses = {d["symbol"]: d["status"] for d in report["decisions"]}
    assert statuses == {"TSLA": "vetoed", "NVDA": "hold", "AAPL": "approved"}
    [body] = webhook_receiver.bodies()
    assert (body["event"], body["severity"], body["dag_id"], body["run_id"]) == (
        "risk_veto",
        "warning",
        "strategy_veto_test",
        "manual__veto",
    )
    [veto] = body["details"]["vetoes"]
    assert veto["symbol"] == "TSLA" and veto["action"] == "BUY" and veto["reasons"]
    assert any("confidence" in reason for reason in veto["reasons"]), veto
    assert body["details"]["strategy"] == "veto_test" and body["details"]["mode"] == "dry_run"
    assert body["summary"].startswith(
        "risk vetoed 1 order(s) in strategy_veto_test (strategy veto_test, mode dry_run): BUY TSLA ("
    )
    assert "NVDA" not in body["text"] and "AAPL" not in body["summary"]


def test_a_retried_risk_task_does_not_repeat_the_alert(risk_run, webhook_receiver):
    signals = [_signal("TSLA", "BUY", 0.5)]
    risk_run(signals, run_id="manual__retried")
    risk_run(signals, run_id="manual__retried")  # the same task again (retry / cleared): same vetoes, same run
    assert len(webhook_receiver.bodies()) == 1
    risk_run(signals, run_id="manual__next_run")  # another run still alerts
    assert len(webhook_receiver.bodies()) == 2


def test_no_alert_without_vetoed_orders(risk_run, webhook_receiver):
    report = risk_run([_signal("TSLA", "HOLD", 0.1), _signal("AAPL", "BUY", 0.9)], run_id="manual__clean")
    assert {d["status"] for d in report["decisions"]} == {"hold", "approved"}
    assert webhook_receiver.requests == []


def test_bad_features_veto_only_their_symbol_whatever_the_signal(risk_run, webhook_receiver):
    from include.trading.context import finite_row

    row, bad = finite_row({"symbol": "NVDA", "close": float("nan"), "rsi_14": float("inf"), "sma_20": 120.0})
    assert bad == ["close", "rsi_14"] and row["close"] is None and row["sma_20"] == 120.0
    why = "non-finite close, rsi_14 in the latest features"
    report = risk_run([_signal("AAPL", "BUY", 0.9), _signal("NVDA", "HOLD", 0.0), _signal("TSLA", "BUY", 0.9)],
                      run_id="manual__nan", bad={"NVDA": why, "AAPL": why})  # AAPL's BUY would pass every limit
    statuses = {d["symbol"]: (d["status"], d["quantity"]) for d in report["decisions"]}
    assert statuses["AAPL"] == ("vetoed", 0) and statuses["NVDA"] == ("vetoed", 0)
    assert statuses["TSLA"][0] == "approved" and statuses["TSLA"][1] > 0
    for symbol in ("AAPL", "NVDA"):
        decision = next(d for d in report["decisions"] if d["symbol"] == symbol)
        assert decision["vetoes"][0]["reason"] == why and not decision["approved"]
