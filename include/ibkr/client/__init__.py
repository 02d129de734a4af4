"""The httpx client of the Client Portal Web API: request core (``core``), market data, account and orders."""

from include.ibkr.client.core import DEFAULT_SNAPSHOT_FIELDS, IBKRClient

__all__ = ["DEFAULT_SNAPSHOT_FIELDS", "IBKRClient"]
