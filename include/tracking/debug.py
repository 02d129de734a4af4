"""``DEBUG_MODE=true`` artifacts: the run's context (params, masked env, versions) and per-step SQL + rows.

Off by default and a no-op then; anything that could hold a secret is masked before it is written.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from include.settings import Settings, mask_url
from include.tracking.runs import dbt_manifest_sha256, git_sha

if TYPE_CHECKING:
    import pandas as pd

    from include.tracking.logger import RunLogger

MASK = "***"
_TOKEN = re.compile(r"[A-Za-z0-9_\-.=+]+")
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.IGNORECASE)
# Only the project's own configuration: an allow-list keeps unrelated secrets of the host out entirely.
_ENV_PREFIXES = ("AIRFLOW", "MLFLOW", "IBKR", "MARKET_DB", "DBT_", "GX_", "STOCK_SYMBOLS", "DEBUG_MODE", "GIT_SHA",
                 "INITIAL_HISTORY", "OVERLAP_SESSIONS", "PYTHONPATH", "TZ", "LOCAL_STACK_DIR")  # fmt: skip
PACKAGES = ("apache-airflow", "apache-airflow-task-sdk", "astronomer-cosmos", "dbt-core", "dbt-postgres",
            "great-expectations", "mlflow", "pandas", "numpy", "SQLAlchemy", "httpx", "psycopg2-binary")  # fmt: skip


def debug_mode(environ: Mapping[str, str] | None = None) -> bool:
    """``DEBUG_MODE`` as a strict boolean: true/false (1/0, yes/no, on/off); anything else is an error."""
    return Settings.from_env(environ).debug_mode


def mask_value(name: str, value: str) -> str:
    """Mask by name (``*PASSWORD*``, ``*TOKEN*``...), URL passwords, and passwords in JSON connections."""
    if _SECRET_NAME.search(name):
        return MASK
    stripped = value.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return MASK  # unparseable JSON in a config variable: do not risk printing it
        return json.dumps(_mask_mapping(data), sort_keys=True) if isinstance(data, dict) else value
    if "://" in value:
        return mask_url_secrets(value)
    return MASK if _looks_secret(stripped) else value


def _looks_secret(text: str) -> bool:
    """A token-like string: long, one word, letters and digits (webhook keys, API tokens, session ids)."""
    return (len(text) >= 20 and _TOKEN.fullmatch(text) is not None and any(c.isdigit() for c in text)
            and any(c.isalpha() for c in text))


def mask_url_secrets(url: str) -> str:
    """A URL with its password, token-like user or path segments (webhook keys) and every query value masked:
    ``https://hooks.slack.com/services/T0/B0/XXXX...?token=abc`` -> ``https://hooks.slack.com/services/T0/B0/***?token=***``."""
    parts = urlsplit(mask_url(url))
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, sep, password = user.partition(":")
        netloc = f"{MASK if _looks_secret(name) else name}{sep}{password}@{host}"
    path = "/".join(MASK if _looks_secret(seg) or (_SECRET_NAME.search(prev) and seg) else seg
                    for prev, seg in zip(["", *parts.path.split("/")], parts.path.split("/"), strict=False))
    query = "&".join(f"{k}={MASK}" if v else k for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query, fragment=MASK if parts.fragment else ""))


def _mask_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = {}
    for key, item in data.items():
        if _SECRET_NAME.search(key):
            masked[key] = MASK
        elif isinstance(item, Mapping):
            masked[key] = _mask_mapping(item)
        elif isinstance(item, str) and "://" in item:
            masked[key] = mask_url_secrets(item)
        elif isinstance(item, str) and _looks_secret(item):
            masked[key] = MASK
        else:
            masked[key] = item
    return masked


def masked_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: mask_value(k, v) for k, v in sorted(env.items()) if k.startswith(_ENV_PREFIXES)}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def debug_context(
    params: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What a run saw: params, masked env, code version, Python and package versions (JSON-ready)."""
    return {
        "captured_at": datetime.now(UTC).isoformat(),
        "params": _mask_mapping(dict(params or {})),
        "env": masked_env(environ),
        "git_sha": git_sha(),
        "dbt_manifest_sha256": dbt_manifest_sha256(),
        "python": sys.version,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "packages": package_versions(),
    }


def log_debug_context(
    logger: RunLogger, params: Mapping[str, Any] | None = None, *, name: str = "context"
) -> bool:
    """Write ``debug/<name>.json`` when DEBUG_MODE is on; returns whether it did."""
    if not debug_mode():
        return False
    logger.log_dict(debug_context(params), f"debug/{name}.json")
    return True


def log_debug_step(
    logger: RunLogger,
    step: str,
    *,
    sql: str | None = None,
    rows: Iterable[Sequence[Any]] | None = None,
    columns: Sequence[str] | None = None,
    df: pd.DataFrame | None = None,
    limit: int = 20,
) -> bool:
    """When DEBUG_MODE is on: ``debug/<step>/query.sql`` and ``debug/<step>/sample.csv`` (first rows)."""
    if not debug_mode():
        return False
    if sql is not None:
        logger.log_text(sql, f"debug/{step}/query.sql")
    if df is not None:
        logger.log_dataframe_sample(df, f"debug/{step}/sample.csv", rows=limit)
    elif rows is not None:
        if columns is None:
            raise ValueError("log_debug_step needs columns= with rows=")
        logger.log_rows_sample(columns, rows, f"debug/{step}/sample.csv", limit=limit)
    return True
