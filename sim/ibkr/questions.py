"""Order reply messages ("questions", §8.1-B / §8.2): which message ids an order triggers, and their text."""

from __future__ import annotations

from collections.abc import Iterable

PRICE_CONSTRAINT = 0.03  # o163: limit price more than 3 % away from the market
TOTAL_VALUE_LIMIT = 100_000.0  # o451

_TEXT = {
    "o163": 'The following order "{desc}" price exceeds \nthe Percentage constraint of 3%.\n'
    "Are you sure you want to submit this order?",
    "o10151": "You are about to submit a market order. Market orders may execute at a price far from the "
    "last traded price.\nAre you sure you want to submit this order?",
    "o451": 'The following order "{desc}" value estimate of {value} USD exceeds \nthe Total Value Limit of '
    "100,000 USD.\nAre you sure you want to submit this order?",
    "o354": "You are submitting an order without market data. We strongly recommend against this as it may "
    "result in erroneous and unexpected trades.\nAre you sure you want to submit this order?",
    "o383": 'The following order "{desc}" size exceeds the Size Limit of 500.\n'
    "Are you sure you want to submit this order?",
    "o403": "This order will most likely trigger and fill immediately.\n"
    "Are you sure you want to submit this order?",
    "o10152": "Stop orders may execute at a price far from the stop price.\nAre you sure you want to submit "
    "this order?",
}


def default_ids(order_type: str, limit: float | None, market: float | None, notional: float) -> list[str]:
    """The conditional defaults: o163 for far-off limits, o10151 for market orders, o451 above 100k."""
    ids: list[str] = []
    far = bool(limit and market and abs(limit - market) / market > PRICE_CONSTRAINT)
    if order_type in ("LMT", "STOP_LIMIT") and far:
        ids.append("o163")
    if order_type == "MKT":
        ids.append("o10151")
    if notional > TOTAL_VALUE_LIMIT:
        ids.append("o451")
    return ids


def pending_ids(candidates: Iterable[str], suppressed: set[str]) -> list[str]:
    """Ids still to ask, in order, without repeats; suppressed ids are never asked (§8.2)."""
    out: list[str] = []
    for message_id in candidates:
        if message_id not in suppressed and message_id not in out:
            out.append(message_id)
    return out


def message(message_id: str, desc: str, value: float) -> str:
    template = _TEXT.get(message_id, 'The following order "{desc}" requires confirmation ({id}).\n'
                                     "Are you sure you want to submit this order?")
    return template.format(desc=desc, value=f"{value:,.2f}", id=message_id)
