"""Kill switch command: ``python -m include.risk.kill_switch {status,halt,reduce,resume} --reason "..."``.
``halt`` -> HALTED (no orders), ``reduce`` -> REDUCING (only position-reducing orders), ``resume`` -> ACTIVE.
Database: ``--db-url``, else ``MARKET_DB_URL`` / the ``market_db`` connection (more: docs/protections.md).
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys

from include.risk.models import TradingState
from include.risk.state_store import StateRecord, change_state, read_state, state_history

COMMANDS = {"halt": TradingState.HALTED, "reduce": TradingState.REDUCING, "resume": TradingState.ACTIVE}


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def set_trading_state(dsn: str, command: str, reason: str, changed_by: str | None = None) -> StateRecord:
    """``command`` is halt / reduce / resume (or a state name); returns the new state record."""
    state = COMMANDS.get(command.lower()) or TradingState(command.upper())
    return change_state(dsn, state, reason, changed_by or default_actor())


def _dsn(explicit: str | None) -> str:
    if explicit:
        return explicit
    from include.settings import load_settings

    return load_settings().require_market_db_url()


def _show(record: StateRecord) -> str:
    prev = f" (was {record.previous_state.value})" if record.previous_state else ""
    return (f"{record.state.value}{prev} since {record.changed_at.isoformat()} by {record.changed_by}: "
            f"{record.reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.risk.kill_switch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["status", *COMMANDS])
    parser.add_argument("--reason", help="why (required for halt/reduce/resume)")
    parser.add_argument("--by", help="who (default: user@host)")
    parser.add_argument("--db-url", help="PostgreSQL URL (default: MARKET_DB_URL or the market_db connection)")
    parser.add_argument("--history", type=int, default=0, metavar="N", help="with status: also the last N changes")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        dsn = _dsn(args.db_url)
        if args.command == "status":
            records = [read_state(dsn), *state_history(dsn, args.history)] if args.history else [read_state(dsn)]
        else:
            if not args.reason:
                parser.error(f"{args.command} needs --reason")
            records = [set_trading_state(dsn, args.command, args.reason, args.by)]
    except Exception as exc:  # a CLI: one clear line, non-zero exit
        print(f"kill_switch: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=1))
    else:
        print(_show(records[0]))
        for record in records[1:]:
            print("  " + _show(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
