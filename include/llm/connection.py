"""Where the LLM lives: an Airflow connection (default ``llm_default``) -> base URL, model, key, vision flag.
Connection layout (OpenAI, vLLM, Ollama) and no fallback to the stub: docs/strategies.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LLM_CONN_ID = "llm_default"


class LLMConfigError(ValueError):
    """The LLM connection is missing or incomplete; the message says what to set."""


@dataclass(frozen=True)
class LLMEndpoint:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    vision: bool = False  # the model accepts image parts (the strategy's own ``vision`` flag must also be on)

    def client(self, *, timeout: float = 30.0, max_retries: int = 2, backoff_seconds: float = 0.5) -> Any:
        from include.llm.client import ChatClient

        return ChatClient(self.base_url, self.model, self.api_key, timeout=timeout, max_retries=max_retries,
                          backoff_seconds=backoff_seconds)


def endpoint_from_connection(conn: Any, conn_id: str = LLM_CONN_ID) -> LLMEndpoint:
    """Build the endpoint from an Airflow ``Connection`` (or anything with host/schema/port/password/extra)."""
    extra = getattr(conn, "extra_dejson", None) or {}
    host = (getattr(conn, "host", None) or "").rstrip("/")
    if not host:
        raise LLMConfigError(f"connection {conn_id!r} has no host: set it to the API base, e.g. http://host:11434/v1")
    if "://" in host:
        url = host
    else:
        scheme = getattr(conn, "schema", None) or "http"
        port = f":{conn.port}" if getattr(conn, "port", None) else ""
        url = f"{scheme}://{host}{port}{extra.get('base_path', '/v1')}"
    model = extra.get("model") or getattr(conn, "login", None)
    if not model:
        raise LLMConfigError(f"connection {conn_id!r} names no model: set extra {{\"model\": \"...\"}}")
    return LLMEndpoint(base_url=url, model=str(model), api_key=getattr(conn, "password", None) or None,
                       vision=bool(extra.get("vision", False)))


def load_endpoint(conn_id: str = LLM_CONN_ID) -> LLMEndpoint:
    """Read the Airflow connection (inside a task); a missing connection raises ``LLMConfigError``."""
    try:
        from airflow.sdk import BaseHook
    except ImportError as exc:
        raise LLMConfigError("Airflow is not installed: build an LLMEndpoint explicitly") from exc
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no API server in this process
        raise LLMConfigError(
            f"no LLM connection {conn_id!r}: define it (host = OpenAI-compatible base URL, extra model) "
            f"or set AIRFLOW_CONN_{conn_id.upper()} ({type(exc).__name__}: {exc})"
        ) from None
    return endpoint_from_connection(conn, conn_id)
