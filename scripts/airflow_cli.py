"""``make airflow ARGS="dags trigger ibkr_trading_strategy"``: the Airflow CLI with the local stack's settings.

The same AIRFLOW_HOME (``.local/airflow``), metadata DB, connections and ports as ``make up`` / ``make demo``
(``scripts/devstack.py``): nothing to export, and no ``airflow.cfg`` / ``airflow.db`` in the working directory.
The embedded PostgreSQL holding the metadata DB is started when it is not running, and stopped again after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from scripts import devstack
from scripts.devstack import AIRFLOW_DB, MARKET_DB, EmbeddedPostgres, StackPorts, airflow_env, stack_urls


def cli_env(environ: Mapping[str, str] | None = None, ports: StackPorts | None = None) -> dict[str, str]:
    """The environment ``airflow`` runs in: the caller's, with the local stack's Airflow settings on top."""
    environ = dict(os.environ if environ is None else environ)
    ports = ports or StackPorts.from_env(environ)
    market_db_url, gateway_url, metadata_url = stack_urls(ports, environ)
    env = {**environ, **airflow_env(market_db_url, gateway_url, metadata_url, ports, environ)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return env


# Airflow imports its graph renderer for every ``dags`` command and warns, on stdout, that graphviz is missing: the
# warning would break ``dags list-runs -o json | jq``. Only ``dags show`` needs graphviz; it keeps the warning.
GRAPHVIZ_WARNING = "ignore:Could not import graphviz:UserWarning"


def with_quiet_graphviz(env: dict[str, str], args: list[str]) -> dict[str, str]:
    """``env`` with Python told to ignore Airflow's missing-graphviz warning, unless ``args`` render a graph."""
    if args[:2] in (["dags", "show"], ["dags", "show-dependencies"]):
        return env
    return {**env, "PYTHONWARNINGS": ",".join(w for w in (env.get("PYTHONWARNINGS"), GRAPHVIZ_WARNING) if w)}


def needs_embedded_postgres(environ: Mapping[str, str] | None = None) -> bool:
    """True when the metadata DB is the embedded PostgreSQL's (no MARKET_DB_URL and no explicit metadata DB)."""
    environ = os.environ if environ is None else environ
    return not environ.get("MARKET_DB_URL") and not environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")


def main(args: list[str]) -> int:
    if not args:
        args = ["--help"]
    postgres = None
    if needs_embedded_postgres():
        postgres = EmbeddedPostgres(devstack.LOCAL / "pgdata", port=StackPorts.from_env().embedded_pg)
        if not postgres.started_here and not devstack.port_open(postgres.port):
            print(f"starting the embedded PostgreSQL (port {postgres.port}) for the metadata DB", file=sys.stderr)
        postgres.start()
        for name in (MARKET_DB, AIRFLOW_DB):
            postgres.ensure_database(name)
    proc = None
    try:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), *args],
                                env=with_quiet_graphviz(cli_env(), args))
        return proc.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached airflow too: let it finish
        return proc.wait() if proc is not None else 130
    finally:
        if postgres is not None and postgres.started_here:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
