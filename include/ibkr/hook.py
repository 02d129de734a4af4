"""``IBKRHook``: builds an ``IBKRClient`` from the ``ibkr_default`` connection (or IBKR_GATEWAY_URL)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from include.settings import IBKR_CONN_ID, Settings, gateway_url_from_connection, load_settings

if TYPE_CHECKING:
    from include.ibkr.client import IBKRClient


class IBKRHook(BaseHook):
    """Connection: type ``http``; host ``localhost`` (or a full URL), port 5000, schema ``https``;
    extra ``{"verify_ssl": false, "account_id": "DU123456", "base_path": "/v1/api"}``.

    For the default connection id, ``IBKR_GATEWAY_URL`` (if set) wins, as everywhere in the project.
    """

    conn_name_attr = "ibkr_conn_id"
    default_conn_name = IBKR_CONN_ID
    conn_type = "http"
    hook_name = "IBKR Client Portal gateway"

    def __init__(self, ibkr_conn_id: str = IBKR_CONN_ID, **client_kwargs: Any) -> None:
        super().__init__()
        self.ibkr_conn_id = ibkr_conn_id
        self.client_kwargs = client_kwargs

    def settings(self, base: Settings | None = None) -> Settings:
        settings = base or load_settings()
        if self.ibkr_conn_id == IBKR_CONN_ID:
            return settings
        url, extra = gateway_url_from_connection(self.get_connection(self.ibkr_conn_id))
        changes: dict[str, Any] = {"ibkr_gateway_url": url}
        if "verify_ssl" in extra:
            changes["ibkr_verify_ssl"] = bool(extra["verify_ssl"])
        if extra.get("account_id"):
            changes["ibkr_account_id"] = str(extra["account_id"])
        return replace(settings, **changes)

    def get_conn(self, settings: Settings | None = None) -> IBKRClient:
        """A client for this connection; pass ``settings`` already loaded to skip a second lookup."""
        from include.ibkr.client import IBKRClient

        s = self.settings(settings)
        kwargs: dict[str, Any] = {
            "verify": s.ibkr_verify_ssl,
            "account_id": s.ibkr_account_id,
            "rate_per_sec": s.ibkr_rate_per_sec,
            "max_concurrent_history": s.ibkr_max_concurrent_history,
            "accepted_questions": s.ibkr_accepted_questions,
        }
        kwargs.update(self.client_kwargs)
        return IBKRClient(s.require_gateway_url(), **kwargs)

    get_client = get_conn

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.get_conn() as client:
                status = client.auth_status()
        except Exception as exc:  # shown verbatim in the connection form's "Test" result
            return False, str(exc)
        return status.healthy, f"authenticated={status.authenticated} connected={status.connected} " \
            f"competing={status.competing} server={status.server_name}"
