"""``DEBUG_MODE``'s environment dump masks secrets by name and by value (URL passwords, webhook keys in paths,
query values, token-like strings), and keeps what is safe and useful to read."""

from __future__ import annotations

import json

from include.tracking.debug import mask_value, masked_env

SLACK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX1234567890abcd"


def test_webhook_keys_in_url_paths_and_query_values_are_masked():
    assert mask_value("AIRFLOW_CONN_ALERTS_WEBHOOK", SLACK) == "https://hooks.slack.com/services/T0000/B0000/***"
    assert mask_value("AIRFLOW_CONN_HOOK", "http://api.example.com/hook?token=abc&channel=ops") == (
        "http://api.example.com/hook?token=***&channel=***")
    assert mask_value("AIRFLOW_CONN_X", "https://a1b2c3d4e5f6g7h8i9j0k1@example.com/x") == "https://***@example.com/x"


def test_passwords_json_connections_and_bare_tokens():
    assert mask_value("MARKET_DB_URL", "postgresql://u:pw@h:5432/market") == "postgresql://u:***@h:5432/market"
    conn = json.dumps({"conn_type": "http", "host": SLACK, "extra": {"channel_key": "abcDEF1234567890abcdef12",
                                                                    "opaque": "abcDEF1234567890abcdef12"}})
    masked = json.loads(mask_value("AIRFLOW_CONN_J", conn))
    assert masked["host"].endswith("/***") and masked["extra"] == {"channel_key": "***", "opaque": "***"}
    assert mask_value("IBKR_OPAQUE", "a1b2c3d4e5f6g7h8i9j0k1l2") == "***"
    assert mask_value("AIRFLOW__CORE__FERNET_KEY", "short") == "***"  # by name


def test_useful_values_stay_readable():
    env = {"IBKR_GATEWAY_URL": "https://localhost:5000/v1/api", "PYTHONPATH": "/work/main:/usr/lib/python3",
           "STOCK_SYMBOLS": "AAPL,GOOGL,MSFT", "HOME": "/root"}
    assert masked_env(env) == {k: v for k, v in env.items() if k != "HOME"}  # HOME: not project configuration
