"""Offline, protocol-faithful simulator of the IBKR Client Portal Gateway (see docs/ibkr-cp-api.md §10)."""

from sim.ibkr.config import SimulatorConfig

__all__ = ["SimulatorConfig"]
