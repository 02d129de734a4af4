"""IBKR Client Portal Web API: httpx client, pure response parsing, and the offline simulator."""
