"""``make demo``: the pipeline end to end, offline, on the embedded stack (or the configured one).

The terminal gets one line per task and per DAG run with timings, then the summary; dbt, Cosmos, Airflow and
Great Expectations log to ``<LOCAL_STACK_DIR>/demo.log`` (``VERBOSE=1`` shows them live instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.devstack import LOCAL, REPO, start_stack
from scripts.run_dags import PROGRESS_FD_ENV

# ingest -> dbt (Cosmos) -> Great Expectations -> strategy 3 (MACD momentum) in dry run -> MLflow
SYMBOLS = ["TSLA", "NVDA"]
STRATEGY = 3
TRADE = {"strategy_id": STRATEGY, "symbols": SYMBOLS, "dry_run": True, "ignore_market_hours": True}
# The simulator's prices are deterministic per date, and crossovers are rare: the demo pins its clock (simulator and
# TRADING_CLOCK) to the evening of a session on which NVDA's MACD crosses above its signal line (0.05 ATR apart, MACD
# above zero), so the run ends with an honest BUY that passes risk and becomes a dry-run order intent.
DEMO_CLOCK = "2026-12-03T22:00:00+00:00"
DAGS = ["ibkr_ingest_daily_bars", "ibkr_ingest_snapshots", "market_data_models",
        f"ibkr_trading_strategy={json.dumps(TRADE)}"]


def verbose(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get("VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


def shown(path: Path) -> str:
    """A path as the user would type it from the repository (make runs there)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def pin_clock(gateway_url: str, at: str) -> None:
    """Set the simulator's clock (running from ``at``): it serves bars and quotes as of then."""
    import httpx

    admin = gateway_url.split("/v1/api")[0] + "/sim/admin/clock"
    httpx.post(admin, json={"now": at, "running": True}, timeout=10).raise_for_status()


def main() -> int:
    started = time.monotonic()
    live = verbose()
    log_path = LOCAL / "demo.log"
    print(f"make demo: {', '.join(SYMBOLS)} through ingestion -> dbt (Cosmos) -> Great Expectations -> strategy"
          f" {STRATEGY} (dry run) -> MLflow", flush=True)
    stack = start_stack()
    progress_fd = None
    try:
        from include.settings import mask_url

        db = "embedded PostgreSQL" if stack.postgres else "MARKET_DB_URL"
        gateway = "simulator" if stack.simulator else "IBKR_GATEWAY_URL"
        env = {**os.environ, **stack.env, "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "INFO")}
        if stack.simulator:  # our simulator: pin its clock and the pipeline's (a real gateway keeps real time)
            env["TRADING_CLOCK"] = os.environ.get("TRADING_CLOCK") or DEMO_CLOCK
            pin_clock(stack.gateway_url, env["TRADING_CLOCK"])
            gateway += f" at {env['TRADING_CLOCK']}"
        print(f"stack: market data {mask_url(stack.market_db_url)} ({db}), gateway {stack.gateway_url} ({gateway})",
              flush=True)
        cmd = [sys.executable, "-m", "scripts.run_dags", *DAGS]
        if live:
            code = subprocess.call(cmd, cwd=REPO, env=env)
        else:
            print(f"logs: {shown(log_path)} (dbt, Cosmos, Airflow, GX; VERBOSE=1 shows them here)", flush=True)
            progress_fd = os.dup(sys.stdout.fileno())  # the child's progress lines come straight to this terminal
            with open(log_path, "w") as log:
                code = subprocess.call(cmd, cwd=REPO, env={**env, PROGRESS_FD_ENV: str(progress_fd)},
                                       stdout=log, stderr=subprocess.STDOUT, pass_fds=(progress_fd,))
    finally:
        if progress_fd is not None:
            os.close(progress_fd)
        stack.stop()
    tail = "" if live else f"; logs in {shown(log_path)}"
    print(f"\ndemo {'finished' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s{tail}")
    return code


if __name__ == "__main__":
    sys.exit(main())
