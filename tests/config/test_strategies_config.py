"""strategies.yaml and its models: the shipped file, defaults merging, lookups and clear validation errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pydantic import ValidationError

from include.config import (
    SIGNAL_MODELS,
    ConfigError,
    UnknownStrategyError,
    enabled_strategies,
    get_strategy,
    load_strategies,
    parse_strategies,
)
from include.risk.limits import RiskLimits

BASE = {"id": 7, "name": "demo_strategy", "symbols": ["TSLA"], "schedule": "@daily",
        "signal": {"model": "rsi_mean_reversion"}}  # fmt: skip


def doc(**changes: object) -> dict:
    entry = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return {"version": 1, "strategies": [entry]}


def test_shipped_file_has_the_four_models_all_dry_run():
    configs = load_strategies()
    assert {c.signal.model for c in configs} == set(SIGNAL_MODELS)
    assert len({c.id for c in configs}) == len(configs) >= 4
    assert all(c.mode == "dry_run" for c in configs)
    assert all((c.schedule is None) != (c.asset is None) for c in configs)
    assert [c.id for c in enabled_strategies()] == [c.id for c in configs if c.enabled]


def test_defaults_are_merged_field_by_field():
    rsi = get_strategy(2)
    assert rsi.risk.max_order_notional == 2000  # overridden by the strategy
    assert rsi.risk.min_confidence == 0.7 and rsi.risk.max_position_notional == 10_000  # from defaults
    assert rsi.symbols == ("TSLA", "NVDA")  # default symbols
    assert get_strategy(4).risk.min_confidence == 0.75
    assert get_strategy(4).signal.prompt == "signal_v1"


def test_mode_defaults_to_dry_run_and_limits_default_conservatively():
    (cfg,) = parse_strategies(doc())
    assert cfg.mode == "dry_run"
    assert cfg.risk == RiskLimits()
    assert cfg.risk.min_confidence == 0.7


def test_configs_are_frozen():
    cfg = get_strategy(1)
    with pytest.raises(ValidationError):
        cfg.mode = "live"
    with pytest.raises(ValidationError):
        cfg.risk.min_confidence = 0.1


def test_unknown_strategy_id_lists_the_known_ones():
    with pytest.raises(UnknownStrategyError, match=r"unknown strategy_id 999; known: 1 \(sma_crossover_20_50\)"):
        get_strategy(999)
    with pytest.raises(UnknownStrategyError, match="must be an integer"):
        get_strategy("1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (doc(signal={"model": "magic"}), "strategy id=7 (demo_strategy): signal: Input tag 'magic'"),
        (doc(signal={"model": "rsi_mean_reversion", "oversld": 20}), "signal.oversld: Extra inputs are not permitted"),
        (doc(signal={"model": "rsi_mean_reversion", "oversold": 55}), "signal.oversold: Input should be less than 50"),
        (doc(signal={"model": "sma_crossover", "fast": "sma_50", "slow": "sma_20"}),
         "fast (sma_50) must have a shorter period than slow (sma_20)"),
        (doc(signal={"model": "llm", "prompt": "signal_v99"}), "signal.prompt: unknown prompt 'signal_v99'"),
        (doc(signal={"model": "llm", "required_features": ["close", "vibes"]}), "unknown feature(s) ['vibes']"),
        (doc(signal={"model": "ml", "threshold": 0.3}), "signal.threshold: Input should be greater than 0.5"),
        (doc(asset="fct_latest_features"), "set exactly one of 'schedule'"),
        (doc(schedule=None), "set exactly one of 'schedule'"),
        (doc(schedule="61 * * * *"), "schedule: invalid cron expression '61 * * * *'"),
        (doc(schedule="@sometimes"), "unknown schedule preset '@sometimes'"),
        (doc(asset="raw.daily_bars", schedule=None), "asset: Input should be 'fct_latest_features'"),
        (doc(symbols=["TSLA", "bad symbol"]), "symbols: invalid stock symbol 'bad symbol'"),
        (doc(symbols=[]), "symbols: Tuple should have at least 1 item"),
        (doc(mode="yolo"), "mode: Input should be 'dry_run', 'paper' or 'live'"),
        (doc(name="Has Spaces"), "name: name 'Has Spaces' must be snake_case"),
        (doc(id="7"), "id: Input should be a valid integer"),
        (doc(risk={"max_shares": 10}), "risk.max_shares: Extra inputs are not permitted"),
        (doc(risk={"min_confidence": 1.5}), "risk.min_confidence: Input should be less than or equal to 1"),
        (doc(risk={"max_order_notional": 20000}), "max_order_notional (20000.0) must not exceed max_position_notional"),
        (doc(risk={"limit_offset_pct": 0.05}), "limit_offset_pct (0.05) must be within price_collar_pct"),
        (doc(colour="blue"), "colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_strategies_fail_with_the_field_and_strategy_named(document, expected):
    with pytest.raises(ConfigError) as info:
        parse_strategies(document)
    assert expected in str(info.value)


def test_duplicate_ids_and_names_are_reported_even_next_to_other_errors():
    bad = copy.deepcopy(BASE) | {"signal": {"model": "nope"}}
    document = {"strategies": [BASE, copy.deepcopy(BASE), bad]}
    with pytest.raises(ConfigError) as info:
        parse_strategies(document)
    message = str(info.value)
    assert "duplicate strategy id 7 (demo_strategy and demo_strategy)" in message
    assert "duplicate strategy name 'demo_strategy'" in message
    assert "Input tag 'nope'" in message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "expected a mapping with 'strategies'"),
        ({"strategies": []}, "'strategies' must be a non-empty list"),
        ({"version": 2, "strategies": [BASE]}, "unsupported version 2"),
        ({"strategies": [BASE], "extras": 1}, "unknown top-level key(s) ['extras']"),
        ({"defaults": {"mode": "live"}, "strategies": [BASE]}, "'defaults' may only hold ['risk', 'symbols']"),
    ],
)
def test_invalid_documents(document, expected):
    with pytest.raises(ConfigError) as info:
        parse_strategies(document)
    assert expected in str(info.value)


def test_load_from_a_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("strategies:\n  - {id: 3, name: abc, symbols: [aapl], asset: fct_latest_features,"
                    " signal: {model: macd_momentum}, mode: paper}\n")
    (cfg,) = load_strategies(path)
    assert (cfg.id, cfg.symbols, cfg.mode, cfg.asset, cfg.dag_id) == (3, ("AAPL",), "paper", "fct_latest_features",
                                                                      "strategy_abc")
    assert get_strategy(3, path) == cfg
    path.write_text("strategies: [unclosed")
    with pytest.raises(ConfigError, match=r"s\.yaml: invalid YAML"):
        load_strategies(path)
    with pytest.raises(ConfigError, match="strategy file not found"):
        load_strategies(tmp_path / "missing.yaml")


def test_the_fast_loader_reads_every_shipped_yaml_as_pyyaml_safe_load_does():
    """safe_loader() is libyaml's parser with PyYAML's safe constructors: the same documents for the project's files."""
    import yaml

    from include.config.loader import safe_loader

    repo = Path(__file__).resolve().parents[2]
    files = [*(repo / "include" / "config").glob("*.yaml"), repo / "airflow_settings.yaml"]
    assert len(files) >= 3
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=safe_loader()) == yaml.safe_load(text), file
    assert safe_loader() is yaml.CSafeLoader  # this environment's PyYAML has libyaml: the fast path is the one tested
