"""Strategies: pure functions of features -> ``Signal`` (rule-based and LLM), one module each, plus a registry.

No broker calls, no order sizing: ``include.risk`` decides whether and how much to trade.
"""

from include.strategies.base import Action, Signal, Strategy

__all__ = ["Action", "Signal", "Strategy"]
