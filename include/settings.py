"""One frozen settings object for the whole project, built from env vars and Airflow connections.

Precedence (env vars win) and why nothing falls back silently: docs/deployment.md ("Settings").
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IBKR_CONN_ID = "ibkr_default"
MARKET_DB_CONN_ID = "market_db"
MLFLOW_CONN_ID = "mlflow_default"

DEFAULT_SYMBOLS = ("TSLA", "NVDA")
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """Configuration is missing or invalid; the message says which variable to set."""


LIVE_OPT_IN_ENV = "ALLOW_LIVE_TRADING"
# Optional strings taken as they are (field name = variable name in lower case).
PLAIN_ENV_VARS = ("STRATEGIES_FILE", "QUALITY_REPORTS_DIR", "MLFLOW_ARTIFACT_ROOT", "MLFLOW_UI_URL",
              "MLFLOW_DATA_EXPERIMENT", "ML_MODEL_NAME", "ML_EXPERIMENT", "GIT_SHA")


class LiveTradingNotAllowed(SettingsError):
    """Live mode without the environment opt-in (the second of the two; the first is the strategy's mode)."""


def mask_url(url: str | None) -> str | None:
    """Return ``url`` with any password replaced by ``***`` (for repr, logs and printed output)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def mask_account(account_id: str | None) -> str | None:
    """``DU1234567`` -> ``DU…567``: enough to tell paper from live and one account from another in logs, XCom
    and MLflow; the full id stays where it is needed to act (the order request, the ledger)."""
    if not account_id:
        return account_id
    text = str(account_id)
    return text if len(text) <= 5 else f"{text[:2]}…{text[-3:]}"


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true/false")


def parse_symbols(raw: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Parse ``"TSLA, nvda"`` or a list into validated, upper-case, de-duplicated symbols."""
    if raw is None:
        return DEFAULT_SYMBOLS
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    symbols: list[str] = []
    for item in items:
        symbol = str(item).strip().upper()
        if not symbol:
            continue
        if not _SYMBOL_RE.match(symbol):
            raise SettingsError(f"invalid stock symbol {item!r} (expected a ticker like TSLA or BRK.B)")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise SettingsError("no stock symbols configured: set STOCK_SYMBOLS, e.g. STOCK_SYMBOLS=TSLA,NVDA")
    return tuple(symbols)


_MESSAGE_ID_RE = re.compile(r"^[a-z]+\d+$")


def _default_accepted_questions() -> tuple[str, ...]:
    from include.config.order_questions import DEFAULT_ACCEPTED_QUESTIONS  # lazy: include.config imports us

    return DEFAULT_ACCEPTED_QUESTIONS


def parse_message_ids(raw: str | None) -> tuple[str, ...]:
    """IBKR_ACCEPTED_QUESTIONS: ``"o163, o451"`` -> ids; unset/blank -> the defaults; ``none`` -> no id."""
    if raw is None or not raw.strip():
        return _default_accepted_questions()
    if raw.strip().lower() == "none":
        return ()
    ids: list[str] = []
    for item in raw.split(","):
        message_id = item.strip().lower()
        if not message_id:
            continue
        if not _MESSAGE_ID_RE.match(message_id):
            raise SettingsError(f"IBKR_ACCEPTED_QUESTIONS: {item.strip()!r} is not an IBKR message id like o163")
        if message_id not in ids:
            ids.append(message_id)
    return tuple(ids)


ON_SYMBOL_ERROR_MODES = ("fail", "warn")


def parse_on_symbol_error(raw: str | None, name: str = "ON_SYMBOL_ERROR") -> str:
    """``fail`` (default: the run fails naming the symbols that did not load) or ``warn`` (it succeeds, alerting)."""
    value = (raw or "fail").strip().lower() or "fail"
    if value not in ON_SYMBOL_ERROR_MODES:
        raise SettingsError(f"{name}={raw!r}: use fail or warn")
    return value


def normalize_pg_url(url: str) -> str:
    """libpq accepts postgresql:// and postgres://; strip SQLAlchemy driver suffixes (+psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise SettingsError(f"MARKET_DB_URL must be a postgresql:// URL, got {mask_url(url)!r}")
    return "postgresql://" + rest


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. URLs that may hold credentials are masked in ``repr``."""

    market_db_url: str | None = field(default=None, repr=False)
    ibkr_gateway_url: str | None = None
    ibkr_verify_ssl: bool = False
    ibkr_account_id: str | None = None
    ibkr_rate_per_sec: float = 10.0
    ibkr_max_concurrent_history: int = 5
    # IBKR_ACCEPTED_QUESTIONS: order warnings the client confirms (include/config/order_questions.py)
    ibkr_accepted_questions: tuple[str, ...] = field(default_factory=_default_accepted_questions)
    mlflow_tracking_uri: str | None = field(default=None, repr=False)
    stock_symbols: tuple[str, ...] = DEFAULT_SYMBOLS  # STOCK_SYMBOLS only; default_symbols() also reads the Variable
    debug_mode: bool = False
    initial_history_sessions: int = 504
    overlap_sessions: int = 5
    on_symbol_error: str = "fail"  # ON_SYMBOL_ERROR: fail|warn, an ingestion run with symbols that did not load
    exchange: str = "XNYS"
    strategies_file: str | None = None  # STRATEGIES_FILE: another strategies YAML than include/config/
    quality_reports_dir: str | None = None  # QUALITY_REPORTS_DIR: GX Data Docs / JSON reports
    quality_max_daily_move: float = 0.4  # QUALITY_MAX_DAILY_MOVE: a larger close-to-close move fails the symbol
    mlflow_artifact_root: str | None = None  # MLFLOW_ARTIFACT_ROOT: for database-backed local stores
    mlflow_ui_url: str | None = None  # MLFLOW_UI_URL: links in the Airflow UI when the tracking URI is internal
    mlflow_data_experiment: str | None = None  # MLFLOW_DATA_EXPERIMENT
    ml_model_name: str | None = None  # ML_MODEL_NAME: registered model of the ml strategy
    ml_experiment: str | None = None  # ML_EXPERIMENT: training runs
    git_sha: str | None = None  # GIT_SHA: the image's commit (no .git in the image)
    trading_clock: datetime | None = None  # TRADING_CLOCK: a fixed "now" for paper tests against the simulator
    allow_live_trading: bool = False  # ALLOW_LIVE_TRADING=yes (exactly "yes": no other truthy spelling)
    allow_live_trading_raw: str | None = field(default=None, repr=False)

    def now(self) -> datetime:
        """The trading clock: TRADING_CLOCK when set (paper and dry runs against the simulator), else UTC now."""
        return self.trading_clock or datetime.now(UTC)

    def require_live_opt_in(self, mode: str, where: str = "") -> None:
        """Raise ``LiveTradingNotAllowed`` for mode ``live`` unless ALLOW_LIVE_TRADING=yes; call before any order."""
        if mode == "live" and self.trading_clock is not None:
            raise LiveTradingNotAllowed(f"{where + ': ' if where else ''}TRADING_CLOCK is set (a simulated clock for "
                                        "tests): live trading runs on the real clock only; unset it")
        if mode == "live" and not self.allow_live_trading:
            prefix = f"{where}: " if where else ""
            raise LiveTradingNotAllowed(
                f"{prefix}mode 'live' needs {LIVE_OPT_IN_ENV}=yes in the worker environment (got "
                f"{self.allow_live_trading_raw!r}, not 'yes'): no order was recorded or sent. Set it to trade real "
                "money, or use mode 'paper'"
            )

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("market_db_url", "mlflow_tracking_uri"):
                value = mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def require_market_db_url(self) -> str:
        if not self.market_db_url:
            raise SettingsError(
                "no market-data database configured: set MARKET_DB_URL (postgresql://...) "
                f"or the Airflow connection {MARKET_DB_CONN_ID!r}"
            )
        return normalize_pg_url(self.market_db_url)

    def require_gateway_url(self) -> str:
        if not self.ibkr_gateway_url:
            raise SettingsError(
                "no IBKR gateway configured: set IBKR_GATEWAY_URL (e.g. https://localhost:5000/v1/api) "
                f"or the Airflow connection {IBKR_CONN_ID!r}"
            )
        return self.ibkr_gateway_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def _int(name: str, default: int, minimum: int = 1) -> int:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not an integer") from None
            if value < minimum:
                raise SettingsError(f"{name}={value} must be >= {minimum}")
            return value

        def _float(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a number") from None

        gateway = env.get("IBKR_GATEWAY_URL") or None
        if gateway and not gateway.startswith(("http://", "https://")):
            raise SettingsError(f"IBKR_GATEWAY_URL={gateway!r} must start with http:// or https://")
        values: dict[str, Any] = {
            "market_db_url": env.get("MARKET_DB_URL") or None,
            "ibkr_gateway_url": gateway.rstrip("/") if gateway else None,
            "ibkr_verify_ssl": parse_bool("IBKR_VERIFY_SSL", env.get("IBKR_VERIFY_SSL"), False),
            "ibkr_account_id": env.get("IBKR_ACCOUNT_ID") or None,
            "ibkr_rate_per_sec": _float("IBKR_RATE_PER_SEC", 10.0),
            "ibkr_max_concurrent_history": _int("IBKR_MAX_CONCURRENT_HISTORY", 5),
            "ibkr_accepted_questions": parse_message_ids(env.get("IBKR_ACCEPTED_QUESTIONS")),
            "mlflow_tracking_uri": env.get("MLFLOW_TRACKING_URI") or None,
            "stock_symbols": parse_symbols(env.get("STOCK_SYMBOLS")),
            "debug_mode": parse_bool("DEBUG_MODE", env.get("DEBUG_MODE"), False),
            "initial_history_sessions": _int("INITIAL_HISTORY_SESSIONS", 504),
            "overlap_sessions": _int("OVERLAP_SESSIONS", 5, minimum=0),
            "on_symbol_error": parse_on_symbol_error(env.get("ON_SYMBOL_ERROR")),
            "quality_max_daily_move": _float("QUALITY_MAX_DAILY_MOVE", 0.4),
            **{name.lower(): env.get(name) or None for name in PLAIN_ENV_VARS},
            "trading_clock": _clock(env.get("TRADING_CLOCK")),
            "allow_live_trading": (env.get(LIVE_OPT_IN_ENV) or "").strip().lower() == "yes",
            "allow_live_trading_raw": env.get(LIVE_OPT_IN_ENV),
        }
        return cls(**values)


def _clock(raw: str | None) -> datetime | None:
    if not raw or not raw.strip():
        return None
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"TRADING_CLOCK={raw!r} is not an ISO timestamp (e.g. 2026-12-03T15:00:00Z)") from None
    if at.tzinfo is None:
        raise SettingsError(f"TRADING_CLOCK={raw!r} needs a timezone (e.g. a trailing Z for UTC)")
    return at.astimezone(UTC)


def gateway_url_from_connection(conn: Any) -> tuple[str, dict[str, Any]]:
    """Build the API base URL from an Airflow HTTP connection (host may already be a full URL)."""
    extra = conn.extra_dejson or {}
    host = (conn.host or "").rstrip("/")
    if "://" in host:
        url = host
    else:
        scheme = conn.schema or ("https" if extra.get("tls", True) else "http")
        port = f":{conn.port}" if conn.port else ""
        url = f"{scheme}://{host}{port}"
    base_path = extra.get("base_path", "/v1/api")
    if not url.endswith(base_path):
        url = url + base_path
    return url, extra


def load_settings(environ: Mapping[str, str] | None = None, *, workflow: Any = None) -> Settings:
    """Env vars first; inside Airflow, unset values come from the project's connections, then from the workflow
    YAML (``include/config/workflow.yaml`` or $WORKFLOW_FILE; ``workflow``: an already loaded one)."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    overrides: dict[str, Any] = {}
    if not settings.market_db_url:
        conn = _airflow_connection(MARKET_DB_CONN_ID)
        if conn is not None:
            overrides["market_db_url"] = conn.get_uri()
    if not settings.ibkr_gateway_url:
        conn = _airflow_connection(IBKR_CONN_ID)
        if conn is not None:
            url, extra = gateway_url_from_connection(conn)
            overrides["ibkr_gateway_url"] = url
            if "verify_ssl" in extra:
                overrides["ibkr_verify_ssl"] = bool(extra["verify_ssl"])
            if extra.get("account_id") and not settings.ibkr_account_id:
                overrides["ibkr_account_id"] = str(extra["account_id"])
        elif _workflow(env, workflow).backend.gateway_url:
            overrides["ibkr_gateway_url"] = _workflow(env, workflow).backend.gateway_url.rstrip("/")
    if not settings.mlflow_tracking_uri:
        uri = _mlflow_uri_from_connection(_airflow_connection(MLFLOW_CONN_ID)) \
            or _workflow(env, workflow).mlflow.tracking_uri
        if uri:
            overrides["mlflow_tracking_uri"] = uri
    return replace(settings, **overrides) if overrides else settings


def mlflow_tracking_uri(environ: Mapping[str, str] | None = None, *, workflow: Any = None) -> str:
    """``MLFLOW_TRACKING_URI``, else the ``mlflow_default`` connection, else ``mlflow.tracking_uri`` of the workflow
    YAML; never a silent local store.

    Only this lookup (not the whole ``load_settings``): tracking helpers call it in every task.
    ``make demo``/``make up`` set the variable to the local store (``scripts/devstack.py``).
    """
    env = os.environ if environ is None else environ
    uri = env.get("MLFLOW_TRACKING_URI") or _mlflow_uri_from_connection(_airflow_connection(MLFLOW_CONN_ID)) \
        or _workflow(env, workflow).mlflow.tracking_uri
    if not uri:
        raise SettingsError(
            "no MLflow tracking store configured: set MLFLOW_TRACKING_URI (a server http://host:5000 or "
            f"sqlite:////abs/path/mlflow.db) or the Airflow connection {MLFLOW_CONN_ID!r}"
        )
    return uri


def _workflow(env: Mapping[str, str], loaded: Any = None) -> Any:
    """The workflow YAML (validated; cached per file): the last place endpoints are looked up."""
    if loaded is not None:
        return loaded
    from include.config.workflow import WORKFLOW_FILE_ENV, load_workflow  # lazy: include.config imports us

    return load_workflow(env.get(WORKFLOW_FILE_ENV) or None)


def _mlflow_uri_from_connection(conn: Any | None) -> str | None:
    if conn is None or not conn.host:
        return None
    return conn.host if "://" in conn.host else conn.get_uri()


def default_symbols(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The symbols a run takes when its conf names none: ``STOCK_SYMBOLS``, else the Airflow Variable
    ``stock_symbols``, else TSLA,NVDA. Asked only where a default list is used (the ingestion DAGs'
    ``resolve_symbols``), not by ``load_settings``: inside a task a Variable is an API server request, and every
    task loads the settings one or more times."""
    env = os.environ if environ is None else environ
    if env.get("STOCK_SYMBOLS"):
        return parse_symbols(env["STOCK_SYMBOLS"])
    variable = _airflow_variable("stock_symbols")
    return parse_symbols(variable) if variable else DEFAULT_SYMBOLS


def _airflow_variable(key: str) -> str | None:
    try:
        from airflow.sdk import Variable
    except ImportError:
        return None
    try:
        return Variable.get(key, default=None)
    except Exception:  # outside a task or without a metadata DB
        return None


def _airflow_connection(conn_id: str) -> Any | None:
    """Look up an Airflow connection; None outside Airflow or when it is not defined."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # plain CLI/bench use without Airflow installed
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # not defined (AirflowNotFoundException) or no API server in this process
        return None
