"""First-start Airflow objects of the plain docker compose stack (its ``airflow-init`` service, after ``db migrate``).

- the simple auth manager's password file: ``{"<AIRFLOW_ADMIN_USER>": "<AIRFLOW_ADMIN_PASSWORD>"}``;
- the connections of ``airflow_settings.yaml`` not defined yet: an ``AIRFLOW_CONN_<ID>`` variable (the compose file
  sets those that carry secrets from ``.env``) or a connection already in the metadata DB (edited in the UI) wins;
- the pools and variables of ``airflow_settings.yaml`` (``scripts.airflow_objects``, as for ``make demo``/``make up``).

Run as a script (``python docker/airflow_init.py``) with the project root on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def connection_specs(path: Path) -> list[dict[str, Any]]:
    """``airflow_settings.yaml`` connections (the Astro CLI's layout) as ``Connection(**kwargs)`` keyword dicts."""
    spec = yaml.safe_load(path.read_text())["airflow"]
    out = []
    for item in spec.get("connections") or []:
        extra = item.get("conn_extra")
        port = item.get("conn_port")
        out.append(
            {
                "conn_id": item["conn_id"],
                "conn_type": item["conn_type"],
                "host": item.get("conn_host") or None,
                "schema": item.get("conn_schema") or None,
                "login": item.get("conn_login") or None,
                "password": item.get("conn_password") or None,
                "port": int(port) if port not in (None, "") else None,
                "extra": json.dumps(extra) if isinstance(extra, Mapping) else (extra or None),
            }
        )
    return out


def apply_connections(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Create the missing connections; returns the ids created. Never overwrites an existing one."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    env = os.environ if environ is None else environ
    created = []
    with create_session() as session:
        for kwargs in connection_specs(path):
            conn_id = kwargs["conn_id"]
            if env.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
                continue  # the environment defines it (and would shadow a DB copy anyway)
            if session.scalar(select(Connection.id).where(Connection.conn_id == conn_id)) is not None:
                continue
            session.add(Connection(**kwargs))
            created.append(conn_id)
    return created


def write_passwords(path: Path, user: str, password: str) -> None:
    """Set ``user``'s password in the simple auth manager's JSON file, keeping the other users' entries."""
    if not user or not password:
        raise SystemExit("AIRFLOW_ADMIN_USER and AIRFLOW_ADMIN_PASSWORD must be set (see .env.example)")
    path.parent.mkdir(parents=True, exist_ok=True)
    passwords = json.loads(path.read_text() or "{}") if path.exists() else {}
    passwords[user] = password
    path.write_text(json.dumps(passwords) + "\n")
    path.chmod(0o600)


def main() -> None:
    from scripts import airflow_objects

    settings = Path(os.environ.get("AIRFLOW_SETTINGS_FILE") or airflow_objects.SETTINGS_FILE)
    password_file = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if password_file:
        write_passwords(
            Path(password_file), os.environ.get("AIRFLOW_ADMIN_USER", ""), os.environ.get("AIRFLOW_ADMIN_PASSWORD", "")
        )
        print(f"admin login: {os.environ['AIRFLOW_ADMIN_USER']} (password from AIRFLOW_ADMIN_PASSWORD)")
    created = apply_connections(settings)
    print(f"connections created from {settings.name}: {', '.join(created) or 'none (all defined)'}")
    airflow_objects.apply(settings)
    print(f"pools and variables applied from {settings.name}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # `scripts` and `include` when PYTHONPATH does not name the project root
    main()
