"""``assess``: signals + account/market context -> one ``RiskDecision`` per signal and a JSON report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from include.risk.checks import DEFAULT_CHECKS, RiskCheck, RunTally
from include.risk.limits import RiskLimits
from include.risk.models import Mode, RiskContext, RiskDecision, TradingState, Working, to_position, to_verdict
from include.risk.sizing import propose
from include.settings import LiveTradingNotAllowed as LiveTradingNotAllowed
from include.settings import Settings
from include.strategies.base import Signal

MODES = ("dry_run", "paper", "live")


def require_live_opt_in(mode: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise ``LiveTradingNotAllowed`` unless live trading is enabled for this process (the settings' opt-in)."""
    Settings.from_env(environ).require_live_opt_in(mode, "risk assessment")


class RiskReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    decisions: tuple[RiskDecision, ...]
    context: dict[str, Any]
    limits: RiskLimits

    @property
    def approved(self) -> list[RiskDecision]:
        return [d for d in self.decisions if d.approved]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (for MLflow): context, limits, summary counts and every decision with its checks."""
        vetoes: dict[str, int] = {}
        for decision in self.decisions:
            for v in decision.vetoes:
                vetoes[v.check] = vetoes.get(v.check, 0) + 1
        summary = {
            "signals": len(self.decisions),
            "approved": sum(d.status == "approved" for d in self.decisions),
            "vetoed": sum(d.status == "vetoed" for d in self.decisions),
            "hold": sum(d.status == "hold" for d in self.decisions),
            "approved_notional": round(sum(d.notional for d in self.decisions if d.approved), 2),
            "vetoes_by_check": vetoes,
        }
        return {"context": self.context, "limits": self.limits.model_dump(mode="json"), "summary": summary,
                "decisions": [d.to_dict() for d in self.decisions]}


def _market_open(flag: bool | None, now: datetime | None, exchange: str) -> tuple[bool, str]:
    if flag is not None:
        return bool(flag), "input"
    from include.marketdata.calendar import MarketCalendar

    at = now or datetime.now(UTC)
    return MarketCalendar(exchange).is_open(at), f"calendar {exchange} at {at.isoformat()}"


def build_context(*, mode: str, account_id: str | None, trading_state: TradingState | str, positions: Mapping[str, Any],
                  last_prices: Mapping[str, float], orders_today: int, verdicts: Mapping[str, Any],
                  market_open: bool | None = None, net_liquidation: float | None = None,
                  gross_position_value: float | None = None, now: datetime | None = None,
                  exchange: str = "XNYS", working: Mapping[str, Any] | None = None,
                  price_notes: Mapping[str, str] | None = None) -> RiskContext:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    held = {sym.upper(): to_position(p) for sym, p in positions.items()}
    prices = {sym.upper(): float(p) for sym, p in last_prices.items() if p is not None}
    if gross_position_value is None:
        # Unknown from the broker (dry run): value positions at the last price, else at their average cost.
        gross_position_value = sum(abs(p.quantity) * (prices.get(s) or p.avg_cost or 0.0) for s, p in held.items())
        gross_source = "positions x last prices"
    else:
        gross_source = "input"
    pending = {sym.upper(): w if isinstance(w, Working) else Working.model_validate(w)
               for sym, w in (working or {}).items()}
    working_buys = sum(w.buy * (prices.get(s) or 0.0) for s, w in pending.items())
    if working_buys:
        gross_position_value += working_buys
        gross_source += f" + working BUYs ${working_buys:,.2f}"
    is_open, open_source = _market_open(market_open, now, exchange)
    return RiskContext(
        mode=mode, account_id=account_id, trading_state=TradingState(str(trading_state).upper()),
        market_open=is_open, market_open_source=open_source, positions=held, working=pending, last_prices=prices,
        price_notes={s.upper(): why for s, why in (price_notes or {}).items()},
        orders_today=orders_today, verdicts={s.upper(): to_verdict(v) for s, v in verdicts.items()},
        net_liquidation=net_liquidation, gross_position_value=float(gross_position_value),
        gross_position_value_source=gross_source,
    )  # fmt: skip


def _priority(signal: Signal, ctx: RiskContext) -> tuple[int, float, str]:
    # Exits first (they free room and are what REDUCING is for), then the most confident; ties by symbol.
    exit_first = 0 if signal.action == "SELL" and ctx.position_qty(signal.symbol) > 0 else 1
    return exit_first, -signal.confidence, signal.symbol


def assess(signals: Sequence[Signal | Mapping[str, Any]], *, limits: RiskLimits, mode: Mode, account_id: str | None,
           trading_state: TradingState | str, positions: Mapping[str, Any], last_prices: Mapping[str, float],
           orders_today: int, verdicts: Mapping[str, Any], market_open: bool | None = None,
           net_liquidation: float | None = None, gross_position_value: float | None = None,
           now: datetime | None = None, environ: Mapping[str, str] | None = None,
           checks: Sequence[RiskCheck] = DEFAULT_CHECKS, working: Mapping[str, Any] | None = None,
           price_notes: Mapping[str, str] | None = None) -> RiskReport:
    """Decide every signal. ``signals`` may be ``Signal`` objects or their dicts (from XCom).

    Every check runs on every BUY/SELL (so all vetoes are recorded, not just the first); an order is approved only
    when none vetoes. Live mode raises before anything is assessed unless ``ALLOW_LIVE_TRADING=yes``.
    """
    require_live_opt_in(mode, environ)
    ctx = build_context(mode=mode, account_id=account_id, trading_state=trading_state, positions=positions,
                        last_prices=last_prices, orders_today=orders_today, verdicts=verdicts,
                        market_open=market_open, net_liquidation=net_liquidation,
                        gross_position_value=gross_position_value, now=now, working=working,
                        price_notes=price_notes)
    parsed = [s if isinstance(s, Signal) else Signal.model_validate(s) for s in signals]
    run = RunTally()
    decisions: list[RiskDecision] = []
    for signal in sorted(parsed, key=lambda s: _priority(s, ctx)):
        common = {"symbol": signal.symbol, "strategy_id": signal.strategy_id, "action": signal.action,
                  "confidence": signal.confidence, "rationale": signal.rationale}
        if signal.action == "HOLD":
            decisions.append(RiskDecision(**common, status="hold", approved=False, sizing="HOLD: no order"))
            continue
        order = propose(signal, ctx, limits, run_added_gross=run.added_gross,
                        run_added_position=run.added_position.get(signal.symbol, 0.0))
        results = tuple(check.check(order, ctx, limits, run) for check in checks)
        vetoes = tuple(r for r in results if not r.approved)
        approved = not vetoes
        if approved:
            run.approved_orders += 1
            if order.side == "BUY":
                run.added_gross += order.notional
                run.added_position[order.symbol] = run.added_position.get(order.symbol, 0.0) + order.notional
        decisions.append(RiskDecision(
            **common, status="approved" if approved else "vetoed", approved=approved, side=order.side,
            quantity=order.quantity if approved else 0, limit_price=order.limit_price, last_price=order.last_price,
            notional=order.notional if approved else 0.0, reduces_position=order.reduces_position,
            position_before=order.position_qty, sizing=order.sizing, vetoes=vetoes, checks=results,
        ))  # fmt: skip
    context = ctx.model_dump(mode="json")
    context["assessed_at"] = (now or datetime.now(UTC)).isoformat()
    context["checks"] = [c.name for c in checks]
    return RiskReport(decisions=tuple(decisions), context=context, limits=limits)
