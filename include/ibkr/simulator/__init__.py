"""Offline, protocol-faithful simulator of the IBKR Client Portal Gateway (see docs/ibkr-cp-api.md §10)."""

from include.ibkr.simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig"]
