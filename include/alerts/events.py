"""Alerts the trading path raises, built from its own records (one function per event)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from include.alerts.models import RISK_VETO


def risk_veto_alert(
    decisions: Iterable[Mapping[str, Any]],
    *,
    dag_id: str | None,
    run_id: str | None,
    strategy: str | None = None,
    mode: str | None = None,
) -> list[str] | None:
    """One ``risk_veto`` alert (severity warning) for a run's vetoed BUY/SELL decisions (risk report dicts), naming
    each symbol, side and reason; None (nothing sent) when no order was vetoed."""
    from include.alerts import send_alert

    vetoed = [d for d in decisions if d.get("status") == "vetoed" and d.get("action") != "HOLD"]
    if not vetoed:
        return None
    items = [{"symbol": d["symbol"], "action": d["action"], "confidence": d.get("confidence"),
              "reasons": [v["reason"] for v in d.get("vetoes", ()) if not v.get("approved", False)]}
             for d in vetoed]  # fmt: skip
    listed = "; ".join(f"{i['action']} {i['symbol']} ({', '.join(i['reasons']) or 'no reason'})" for i in items)
    where = ", ".join(p for p in (f"strategy {strategy}" if strategy else "", f"mode {mode}" if mode else "") if p)
    summary = f"risk vetoed {len(items)} order(s) in {dag_id}" + (f" ({where})" if where else "") + f": {listed}"
    details = {"strategy": strategy, "mode": mode, "vetoed": len(items), "vetoes": items}
    return send_alert(RISK_VETO, summary, details=details, severity="warning", dag_id=dag_id, run_id=run_id)
