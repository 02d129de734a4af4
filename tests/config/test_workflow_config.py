"""workflow.yaml and ``ConfigLoader``: the shipped file, validation errors, and the environment winning."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.config import ConfigError
from include.config.workflow import ConfigLoader, MarketConfig, load_workflow
from include.settings import SettingsError, load_settings, mlflow_tracking_uri


@pytest.fixture
def no_endpoints(monkeypatch):
    for var in ("IBKR_GATEWAY_URL", "MLFLOW_TRACKING_URI", "WORKFLOW_FILE", "IBKR_VERIFY_SSL"):
        monkeypatch.delenv(var, raising=False)


def write(tmp_path, text: str):
    path = tmp_path / "workflow.yaml"
    path.write_text(text)
    return path


def test_shipped_file_names_no_endpoint_and_matches_the_running_dags(no_endpoints):
    loader = ConfigLoader()
    backend = loader.get_backend_config()
    assert backend.gateway_url is None and backend.timeout == 15 and backend.retry_attempts == 4
    mlflow = loader.get_mlflow_config()
    assert mlflow.tracking_uri is None  # never a silent local store
    assert mlflow.experiment("oversold") == "ibkr-strategy-oversold"  # the strategy runs' experiment
    market = loader.get_market_config()
    assert market.exchange == "XNYS" and market.trading_days == (1, 2, 3, 4, 5)
    assert (market.trading_hours.start, market.trading_hours.end) == ("09:30", "16:00")
    assert market.trading_hours.timezone == "America/New_York"
    assert loader.get_default_args() == {"owner": "trading", "retries": 2, "retry_delay": timedelta(seconds=30)}


def test_environment_wins_over_the_yaml(no_endpoints, tmp_path, monkeypatch):
    path = write(tmp_path, """
backend: {gateway_url: "https://gw.example:5000/v1/api", timeout: 5, retry_attempts: 1}
mlflow: {tracking_uri: "http://mlflow.example:5000", experiment_name: "team-{strategy}"}
""")
    loader = ConfigLoader(path)
    assert loader.get_backend_config().gateway_url == "https://gw.example:5000/v1/api"
    assert loader.get_mlflow_config().tracking_uri == "http://mlflow.example:5000"
    assert loader.get_mlflow_config().experiment("x") == "team-x"
    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:5999/v1/api")
    monkeypatch.setenv("IBKR_VERIFY_SSL", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/x/mlflow.db")
    backend = loader.get_backend_config()
    assert backend.gateway_url == "http://127.0.0.1:5999/v1/api" and backend.verify_ssl is True
    assert backend.timeout == 5  # tuning stays the YAML's
    assert loader.get_mlflow_config().tracking_uri == "sqlite:////tmp/x/mlflow.db"


def test_settings_fall_back_to_the_workflow_file(no_endpoints, tmp_path, monkeypatch):
    """WORKFLOW_FILE points the whole project (hook, tasks, tracking) at another YAML: one source of truth."""
    path = write(tmp_path, 'backend: {gateway_url: "https://gw.example/v1/api/"}\n'
                           'mlflow: {tracking_uri: "http://mlflow.example:5000"}\n')
    with pytest.raises(SettingsError, match="no MLflow tracking store"):
        mlflow_tracking_uri()
    assert load_settings().ibkr_gateway_url is None
    monkeypatch.setenv("WORKFLOW_FILE", str(path))
    assert load_settings().ibkr_gateway_url == "https://gw.example/v1/api"
    assert load_settings().mlflow_tracking_uri == mlflow_tracking_uri() == "http://mlflow.example:5000"


@pytest.mark.parametrize(("text", "message"), [
    ("market: {trading_hours: {start: '9:30'}}", "market.trading_hours.start: '9:30' is not a time"),
    ("market: {trading_hours: {start: '16:00', end: '09:30'}}", "start 16:00 must be before end 09:30"),
    ("market: {trading_hours: {timezone: Mars/Olympus}}", "unknown timezone"),
    ("market: {trading_days: [0, 1]}", "ISO weekdays"),
    ("backend: {gateway_url: 'gw:5000'}", "must start with http"),
    ("backend: {timout: 3}", "backend.timout: Extra inputs are not permitted"),
    ("version: 2", "unsupported version"),
    ("defaults: {retries: -1}", "defaults.retries"),
])
def test_invalid_files_name_the_field(tmp_path, text, message):
    with pytest.raises(ConfigError, match=r"workflow\.yaml: ") as err:
        load_workflow(write(tmp_path, text))
    assert message in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="workflow file not found"):
        ConfigLoader(tmp_path / "nope.yaml").get_market_config()


def test_market_config_from_the_guides_mapping():
    market = MarketConfig.model_validate({"trading_hours": {"start": "10:00", "end": "15:30",
                                                            "timezone": "America/New_York"},
                                          "trading_days": [5, 1, 1]})
    assert market.trading_days == (1, 5) and market.exchange == "XNYS"
