"""Load ``strategies.yaml``: defaults merged into each strategy, then validated; errors name the strategy and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from include.config.models import SIGNAL_MODELS, StrategyConfig
from include.settings import Settings

STRATEGIES_YAML = Path(__file__).with_name("strategies.yaml")
_TOP_KEYS = {"version", "defaults", "strategies"}
_DEFAULT_KEYS = {"risk", "symbols"}


class ConfigError(ValueError):
    """strategies.yaml is invalid; the message names the file, the strategy and the field."""


class UnknownStrategyError(ConfigError, LookupError):
    """No strategy has the requested id."""


def _format(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        # The discriminated union puts the model name in the path ("signal.llm.prompt"): drop it.
        if len(loc) >= 2 and loc[0] == "signal" and loc[1] in SIGNAL_MODELS:
            loc.pop(1)
        field = ".".join(loc) or "(strategy)"
        msg = e["msg"].removeprefix("Value error, ")
        shown = "" if e["type"] in ("missing", "value_error") else f" (got {e.get('input')!r})"
        lines.append(f"{where}: {field}: {msg}{shown}")
    return "\n".join(lines)


def _merge_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = dict(raw)
    if "symbols" in defaults and "symbols" not in merged:
        merged["symbols"] = defaults["symbols"]
    if "risk" in defaults:
        risk = raw.get("risk") or {}
        merged["risk"] = {**defaults["risk"], **risk} if isinstance(risk, dict) else risk
    return merged


def parse_strategies(document: Any, source: str = "strategies.yaml") -> list[StrategyConfig]:
    """Validate an already-parsed YAML document (a mapping with ``strategies``)."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with 'strategies', got {type(document).__name__}")
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    if document.get("version", 1) != 1:
        raise ConfigError(f"{source}: unsupported version {document.get('version')!r} (expected 1)")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise ConfigError(f"{source}: 'defaults' may only hold {sorted(_DEFAULT_KEYS)}")
    items = document.get("strategies")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: 'strategies' must be a non-empty list")

    configs: list[StrategyConfig] = []
    errors: list[str] = []
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            errors.append(f"{source}: strategies[{index}]: expected a mapping")
            continue
        where = f"{source}: strategy id={raw.get('id', '?')} ({raw.get('name', f'strategies[{index}]')})"
        try:
            configs.append(StrategyConfig.model_validate(_merge_defaults(raw, defaults)))
        except ValidationError as exc:
            errors.append(_format(exc, where))
    # Duplicates are checked on the raw entries so they are reported even when an entry is otherwise invalid.
    seen_ids: dict[int | str, str] = {}
    seen_names: set[str] = set()
    for raw in items:
        if not isinstance(raw, dict):
            continue
        sid, name = raw.get("id"), raw.get("name")
        if isinstance(sid, int | str):
            if sid in seen_ids:
                errors.append(f"{source}: duplicate strategy id {sid} ({seen_ids[sid]} and {name})")
            seen_ids.setdefault(sid, str(name))
        if isinstance(name, str):
            if name in seen_names:
                errors.append(f"{source}: duplicate strategy name {name!r}")
            seen_names.add(name)
    if errors:
        raise ConfigError("\n".join(errors))
    return configs


def safe_loader() -> Any:
    """PyYAML's safe loader in C (libyaml) where PyYAML was built with it: the same documents, ~8x faster (the
    strategy file is read by five task processes a trading run)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_strategies(path: str | Path | None = None) -> list[StrategyConfig]:
    """All strategies (enabled or not) from ``path``, else $STRATEGIES_FILE, else include/config/strategies.yaml."""

    import yaml

    file = Path(path or Settings.from_env().strategies_file or STRATEGIES_YAML)
    try:
        document = yaml.load(file.read_text(encoding="utf-8"), Loader=safe_loader())
    except FileNotFoundError:
        raise ConfigError(f"strategy file not found: {file}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file.name}: invalid YAML: {exc}") from None
    return parse_strategies(document, file.name)


def enabled_strategies(path: str | Path | None = None) -> list[StrategyConfig]:
    """What the DAG factory builds one DAG each for."""
    return [cfg for cfg in load_strategies(path) if cfg.enabled]


def get_strategy(strategy_id: int, path: str | Path | None = None) -> StrategyConfig:
    """The strategy with ``strategy_id`` (enabled or not: the caller decides whether a disabled one may run)."""
    if isinstance(strategy_id, bool) or not isinstance(strategy_id, int):
        raise UnknownStrategyError(f"strategy_id must be an integer, got {strategy_id!r}")
    configs = load_strategies(path)
    for cfg in configs:
        if cfg.id == strategy_id:
            return cfg
    known = ", ".join(f"{c.id} ({c.name})" for c in configs)
    raise UnknownStrategyError(f"unknown strategy_id {strategy_id}; known: {known}")
