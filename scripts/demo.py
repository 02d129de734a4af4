"""``make demo``: the pipeline end to end, offline, on the embedded stack (or the configured one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from scripts.devstack import REPO, start_stack

# ingest -> dbt (Cosmos) -> Great Expectations -> strategy 1 in dry run (outside market hours too) -> MLflow
TRADE = {"strategy_id": 1, "symbols": ["TSLA", "NVDA"], "dry_run": True, "ignore_market_hours": True}
DAGS = ["ibkr_ingest_daily_bars", "ibkr_ingest_snapshots", "market_data_models",
        f"ibkr_trading_strategy={json.dumps(TRADE)}"]


def main() -> int:
    started = time.monotonic()
    stack = start_stack()
    try:
        print("\n".join(stack.describe()), flush=True)
        # Task logs at WARNING keep the terminal readable; failures still print their traceback.
        # `DEMO_LOG_LEVEL=INFO make demo` shows every task log line.
        env = {**os.environ, **stack.env,
               "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "WARNING")}
        code = subprocess.call([sys.executable, "-m", "scripts.run_dags", *DAGS], cwd=REPO, env=env)
    finally:
        stack.stop()
    print(f"\ndemo {'finished' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
