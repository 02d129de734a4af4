"""include/tls.py: one verified context per process, handed to the project's HTTPS clients; off only where asked."""

import ssl

from include.llm.client import ChatClient
from include.tls import verified_context, verify_option
from include.tracking.rest import RestTracking


def _context(client) -> ssl.SSLContext:
    return client._http._transport._pool._ssl_context  # httpx's transport keeps the context it was given


def test_one_verified_context_shared_by_the_https_clients(monkeypatch):
    context = verified_context()
    assert context is verified_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS", raising=False)
    assert _context(RestTracking("https://mlflow.example")) is context
    assert _context(ChatClient("https://llm.example/v1", "m")) is context


def test_checks_stay_off_only_where_a_user_turned_them_off(monkeypatch):
    assert verify_option(False) is False and verify_option(True) is verified_context()
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    insecure = _context(RestTracking("https://mlflow.example"))
    assert insecure is not verified_context() and insecure.verify_mode == ssl.CERT_NONE
