"""Frozen start-up configuration of the simulated gateway; runtime changes replace it (admin API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

SESSION_STATES = ("logged_out", "sso_only", "authenticated")
FILL_MODES = ("market_hours", "immediate")


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 42
    account_id: str = "DU1234567"
    initial_cash: float = 1_000_000.0
    initial_positions: tuple[tuple[str, float, float], ...] = ()  # (symbol, qty, avg price)
    session_state: str = "authenticated"
    primed: bool = False
    competing: bool = False
    rate_limits: bool = True
    global_rate_per_sec: float = 10.0  # §9: CP Gateway users get 10 req/s
    history_max_concurrent: int = 5  # §6.1: 5 concurrent history requests
    history_latency_ms: int = 0
    bars_csv_dir: str | None = None
    synthetic_symbols: int = 0
    history_start: date = date(2010, 1, 4)
    fill_mode: str = "market_hours"
    idle_timeout_s: float = 360.0  # §9: "several minutes", ~5-6 min is UNCONFIRMED
    server_name: str = "IBKR-SIM"
    now: datetime | None = None
    # None = ask o163/o10151/o451 when their condition holds; a tuple = ask exactly these for every order.
    questions: tuple[str, ...] | None = None
    penalty_box_s: float = 0.0  # §9 penalty box (10 min on the real gateway); 0 = off
    # §1 `ips.allow`: fnmatch patterns of client addresses; others get 404 "Access Denied". Empty = all.
    allowed_clients: tuple[str, ...] = ()
    commission_per_share: float = 0.005
    commission_min: float = 1.0

    def __post_init__(self) -> None:
        if self.session_state not in SESSION_STATES:
            raise ValueError(f"session_state must be one of {SESSION_STATES}, got {self.session_state!r}")
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.history_max_concurrent < 1 or self.global_rate_per_sec <= 0:
            raise ValueError("history_max_concurrent and global_rate_per_sec must be positive")
