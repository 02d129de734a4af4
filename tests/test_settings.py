from dataclasses import FrozenInstanceError

import pytest

from include.settings import Settings, SettingsError, load_settings, mask_url, normalize_pg_url, parse_symbols


def test_defaults_are_conservative_and_need_explicit_endpoints():
    s = Settings.from_env({})
    assert s.stock_symbols == ("TSLA", "NVDA")
    assert s.debug_mode is False
    with pytest.raises(SettingsError, match="IBKR_GATEWAY_URL"):
        s.require_gateway_url()
    with pytest.raises(SettingsError, match="MARKET_DB_URL"):
        s.require_market_db_url()


def test_env_values_are_parsed_and_frozen():
    s = Settings.from_env(
        {
            "STOCK_SYMBOLS": " aapl, msft ,AAPL",
            "DEBUG_MODE": "yes",
            "IBKR_GATEWAY_URL": "https://gw:5000/v1/api/",
            "MARKET_DB_URL": "postgresql+psycopg2://u:pw@db:5432/market",
            "IBKR_ACCOUNT_ID": "DU111",
        }
    )
    assert s.stock_symbols == ("AAPL", "MSFT")
    assert s.debug_mode is True
    assert s.ibkr_gateway_url == "https://gw:5000/v1/api"
    assert s.require_market_db_url() == "postgresql://u:pw@db:5432/market"
    with pytest.raises(FrozenInstanceError):
        s.debug_mode = False  # type: ignore[misc]


def test_secrets_are_masked_in_repr():
    s = Settings.from_env(
        {
            "MARKET_DB_URL": "postgresql://trader:hunter2@db/market",
            "MLFLOW_TRACKING_URI": "https://bob:s3cret@mlflow.example",
        }
    )
    text = repr(s)
    assert "hunter2" not in text and "s3cret" not in text
    assert "trader:***@db" in text
    assert mask_url("postgresql://db/market") == "postgresql://db/market"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STOCK_SYMBOLS": "TSLA,not a ticker"}, "invalid stock symbol"),
        ({"STOCK_SYMBOLS": " , "}, "no stock symbols"),
        ({"DEBUG_MODE": "maybe"}, "DEBUG_MODE"),
        ({"IBKR_GATEWAY_URL": "localhost:5000"}, "must start with http"),
        ({"INITIAL_HISTORY_SESSIONS": "lots"}, "not an integer"),
        ({"INITIAL_HISTORY_SESSIONS": "0"}, ">= 1"),
    ],
)
def test_wrong_config_gives_a_clear_error(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_non_postgres_url_is_rejected():
    with pytest.raises(SettingsError, match="postgresql://"):
        normalize_pg_url("sqlite:///x.db")


def test_parse_symbols_accepts_lists():
    assert parse_symbols(["brk.b", "TSLA"]) == ("BRK.B", "TSLA")


def test_load_settings_without_airflow_connections_uses_env_only(monkeypatch):
    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:5055/v1/api")
    monkeypatch.delenv("MARKET_DB_URL", raising=False)
    s = load_settings()
    assert s.ibkr_gateway_url == "http://127.0.0.1:5055/v1/api"
    assert s.market_db_url is None  # no silent default database


def test_mlflow_tracking_uri_env_then_connection_then_a_clear_error(monkeypatch):
    from include.settings import mlflow_tracking_uri

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", '{"conn_type": "http", "host": "http://mlflow:5000"}')
    assert mlflow_tracking_uri({"MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow.db"}) == "sqlite:////srv/mlflow.db"
    assert mlflow_tracking_uri({}) == "http://mlflow:5000"
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT")
    with pytest.raises(SettingsError, match=r"MLFLOW_TRACKING_URI.*mlflow_default"):
        mlflow_tracking_uri({})


def test_on_symbol_error_is_fail_by_default_or_warn():
    assert Settings.from_env({}).on_symbol_error == "fail"
    assert Settings.from_env({"ON_SYMBOL_ERROR": " Warn "}).on_symbol_error == "warn"
    with pytest.raises(SettingsError, match="ON_SYMBOL_ERROR='skip': use fail or warn"):
        Settings.from_env({"ON_SYMBOL_ERROR": "skip"})


def test_the_default_symbol_list_is_read_where_it_is_used_not_by_every_settings_load(monkeypatch):
    """STOCK_SYMBOLS, else the Airflow Variable stock_symbols (here from the SDK's AIRFLOW_VAR_ environment backend),
    else TSLA,NVDA; load_settings never asks for the Variable (inside a task it is an API server request)."""
    from include import settings as settings_module
    from include.settings import default_symbols

    monkeypatch.delenv("STOCK_SYMBOLS", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_STOCK_SYMBOLS", raising=False)
    assert default_symbols() == ("TSLA", "NVDA")
    monkeypatch.setenv("AIRFLOW_VAR_STOCK_SYMBOLS", "aapl, googl,MSFT")
    assert default_symbols() == ("AAPL", "GOOGL", "MSFT")
    assert default_symbols({"STOCK_SYMBOLS": "nvda"}) == ("NVDA",)  # the environment wins

    def no_variable(key):
        raise AssertionError(f"load_settings asked for the Variable {key}")

    monkeypatch.setattr(settings_module, "_airflow_variable", no_variable)
    assert load_settings({"MARKET_DB_URL": "postgresql://db/market", "IBKR_GATEWAY_URL": "https://gw/v1/api",
                          "MLFLOW_TRACKING_URI": "http://mlflow:5000"}).stock_symbols == ("TSLA", "NVDA")
