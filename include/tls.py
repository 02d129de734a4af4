"""One verified TLS context per process for the project's HTTPS clients (MLflow's REST API, the LLM endpoint, alert
webhooks): the CA bundle httpx loads for ``verify=True`` (SSL_CERT_FILE or SSL_CERT_DIR, else certifi's), loaded once
instead of per client (~40 ms each). The scheduler builds it before forking task processes (docs/deployment.md)."""

from __future__ import annotations

import ssl
from functools import lru_cache


@lru_cache(maxsize=1)
def verified_context() -> ssl.SSLContext:
    """Certificate and host name checks on, as ``httpx.Client(verify=True)``; shared, never modified."""
    import httpx

    return httpx.create_ssl_context(verify=True)


def verify_option(verify: bool) -> ssl.SSLContext | bool:
    """What to pass httpx as ``verify``: the shared context, or False where a user turned checks off."""
    return verified_context() if verify else False
