"""Child process for the kill test: ``python -m tests.execution.child_submit '<json>'`` runs one paper
execution with IBKR's default pacing; the parent SIGKILLs it while its order POST is in flight."""

from __future__ import annotations

import json
import sys

from include.execution import execute_intents
from include.ibkr.client import IBKRClient
from tests.execution.support import plan, run_ctx


def main(raw: str) -> None:
    args = json.loads(raw)
    with IBKRClient(args["base_url"], timeout=120.0) as client:
        execute_intents([plan(s) for s in args["symbols"]], run_ctx(args["run_id"]), dsn=args["dsn"],
                        broker=client)


if __name__ == "__main__":
    main(sys.argv[1])
