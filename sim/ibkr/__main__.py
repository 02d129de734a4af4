"""`python -m sim.ibkr --port 5055 [--tls] ...`: serve the simulator in the foreground."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from datetime import datetime

import uvicorn

from sim.ibkr.app import API_BASE, create_app
from sim.ibkr.config import FILL_MODES, SESSION_STATES, SimulatorConfig
from sim.ibkr.tls import self_signed_cert

log = logging.getLogger("ibkr.simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sim.ibkr", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5055)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--account", default="DU1234567")
    p.add_argument("--state", choices=SESSION_STATES, default="authenticated")
    p.add_argument("--no-rate-limits", action="store_true")
    p.add_argument("--bars-csv", metavar="DIR")
    p.add_argument("--synthetic-symbols", type=int, default=0)
    p.add_argument("--history-latency-ms", type=int, default=0)
    p.add_argument("--fill-mode", choices=FILL_MODES, default="market_hours")
    p.add_argument("--now", help="fixed simulated time, ISO 8601 with zone (default: real time)")
    p.add_argument("--tls", action="store_true", help="HTTPS with a self-signed certificate like CPGW")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    config = SimulatorConfig(
        seed=args.seed, account_id=args.account, session_state=args.state,
        rate_limits=not args.no_rate_limits,
        bars_csv_dir=args.bars_csv, synthetic_symbols=args.synthetic_symbols,
        history_latency_ms=args.history_latency_ms, fill_mode=args.fill_mode,
    )
    if args.now:
        config = replace(config, now=datetime.fromisoformat(args.now.replace("Z", "+00:00")))
    return config


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ssl: dict[str, str] = {}
    if args.tls:
        cert, key = self_signed_cert()
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    scheme = "https" if args.tls else "http"
    log.info("IBKR gateway simulator listening on %s://%s:%d%s", scheme, args.host, args.port, API_BASE)
    # uvicorn stops cleanly on SIGINT/SIGTERM.
    uvicorn.run(create_app(config_from(args)), host=args.host, port=args.port, log_level="warning",
                access_log=False, server_header=False, **ssl)


if __name__ == "__main__":
    main()
