"""Run check suites with Great Expectations: ephemeral context, one Postgres datasource (TCP), one table asset and
expectation suite per relation, one checkpoint that also builds Data Docs. Returns plain ``CheckResult`` objects
(what verdicts are made of) and each suite's GX validation result as a JSON-ready dict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from include.quality.checks import Check, Severity

DATASOURCE = "market_db"
DOCS_SITE = "quality_reports"
_GX_SEVERITY = {"fail": "critical", "warn": "warning"}


@dataclass(frozen=True)
class Suite:
    name: str
    relation: str  # schema.table, validated by checks.relation()
    checks: list[Check]


@dataclass(frozen=True)
class CheckResult:
    suite: str
    check: str
    severity: Severity
    success: bool
    rows: list[dict[str, Any]] = field(default_factory=list)  # symbol, sessions, first_date, examples
    error: str | None = None  # the check could not run; its symbols are not known to be clean


@dataclass
class SuiteOutcome:
    suite: str
    results: list[CheckResult]
    gx_result: dict[str, Any]


def tcp_url(dsn: str) -> str:
    """The DSN if it names a TCP host: GX's add_postgres rejects unix-socket URLs ("URL host invalid")."""
    parts = urlsplit(dsn)
    host = unquote(parts.hostname or "")
    socket_in_query = any(v.startswith("/") for v in parse_qs(parts.query).get("host", []))
    if not host or host.startswith("/") or socket_in_query:
        raise ValueError("data-quality checks need a TCP database URL, e.g. postgresql://user@127.0.0.1:5432/market")
    return "postgresql://" + dsn.split("://", 1)[1]


def run_suites(dsn: str, suites: list[Suite], docs_dir: Path | None = None) -> list[SuiteOutcome]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # read when GX builds the context
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from include.quality.expectation import ExpectNoOffendingRows

    context = gx.get_context(mode="ephemeral")
    # tqdm bars go to stderr, which Airflow logs as errors.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in list(context.get_site_names()):  # the default site writes to a temp dir nobody reads
        context.delete_data_docs_site(site)
    if docs_dir is not None:
        context.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    datasource = context.data_sources.add_postgres(DATASOURCE, connection_string=tcp_url(dsn))

    definitions, outcomes = [], {}
    for suite in suites:
        schema, table = suite.relation.split(".")
        try:
            asset = datasource.add_table_asset(suite.name, table_name=table, schema_name=schema)
        except Exception as exc:  # e.g. the mart does not exist yet: its checks cannot run, the others still do
            outcomes[suite.name] = _errored(suite, f"{suite.relation}: {_first_line(exc)}")
            continue
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        for check in suite.checks:
            gx_suite.add_expectation(ExpectNoOffendingRows(
                unexpected_rows_query=check.query, description=check.description,
                severity=_GX_SEVERITY[check.severity], meta={"check": check.name, "severity": check.severity},
            ))
        batch = asset.add_batch_definition_whole_table(f"{suite.name}_table")
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)))

    if definitions:
        actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])] if docs_dir else []
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name="market_data_quality", validation_definitions=definitions, actions=actions,
            result_format="SUMMARY"))
        for result in checkpoint.run().run_results.values():
            outcomes[result.suite_name] = _outcome(result)
    return [outcomes[s.name] for s in suites]


def _outcome(result: Any) -> SuiteOutcome:
    checks = []
    for evr in result.results:
        meta = evr.expectation_config.meta or {}
        rows = (evr.result or {}).get("details", {}).get("unexpected_rows", [])
        error = _error(evr.exception_info)
        checks.append(CheckResult(result.suite_name, meta["check"], meta["severity"],
                                  bool(evr.success) and error is None, rows, error))
    return SuiteOutcome(result.suite_name, checks, result.to_json_dict())


def _errored(suite: Suite, error: str) -> SuiteOutcome:
    results = [CheckResult(suite.name, c.name, c.severity, False, [], error) for c in suite.checks]
    return SuiteOutcome(suite.name, results, {"suite_name": suite.name, "success": False, "error": error})


def _error(info: dict[str, Any] | None) -> str | None:
    """GX reports a failed metric as {metric_id: {...}} and a clean run as {"raised_exception": False, ...}."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [_first_line(e.get("exception_message") or "error") for e in entries
                if e.get("raised_exception", True)]
    return "; ".join(messages) or None


def _first_line(error: object) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()] or ["error"]
    return lines[0][:300]
