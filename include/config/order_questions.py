"""Which IBKR order warnings ("reply questions", ibkr-cp-api.md §8.1-B/§8.2) the client confirms; every other
question is declined and the order is not placed. Why each default is safe: docs/order-questions.md."""

from __future__ import annotations

# message id -> why confirming it is safe for the orders this project sends (LMT orders sized by the risk
# engine). Override with IBKR_ACCEPTED_QUESTIONS (``Settings.ibkr_accepted_questions``).
ACCEPTED_QUESTIONS: dict[str, str] = {
    "o163": "limit price more than IBKR's percentage constraint (3 %) from its market: a limit order never "
    "fills worse than its limit, and risk already kept that limit inside its price collar",
    "o354": "no market data subscription (usual on paper accounts): the limit price comes from our own "
    "validated bars/snapshot and caps the fill",
    "o383": "order size above IBKR's precautionary size limit: max_order_notional and the position limits of "
    "the risk engine bound the size more tightly",
    "o451": "order value above IBKR's precautionary total value limit: max_order_notional bounds it more "
    "tightly",
}
DEFAULT_ACCEPTED_QUESTIONS: tuple[str, ...] = tuple(ACCEPTED_QUESTIONS)

# Known ids that are deliberately NOT accepted (the client declines them): documentation for operators.
REFUSED_QUESTIONS: dict[str, str] = {
    "o10151": "market order: no price cap, so risk's notional bound does not hold at the fill",
    "o10152": "stop order risks: this project sends no stop orders",
    "o10153": "mandatory cap price: IBKR wants a price cap this project did not send",
    "o403": "order will most likely trigger and fill immediately (stops): not an order this project sends",
    "o10331": "stop order warning: this project sends no stop orders",
    "o10164": "cash quantity order: this project sends share quantities",
    "o10223": "cash quantity order: this project sends share quantities",
    "p6": "the order would go to more than one account: wrong account setup",
    "p12": "disruptive order / price management algorithm: needs a human",
}
