"""``ExpectNoOffendingRows``: GX's UnexpectedRowsExpectation returning every offending row from a single query.

Imports great_expectations: import this module lazily (never at DAG parse time). Why not GX's: docs/data-quality.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.core.unexpected_rows_expectation import UnexpectedRowsExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.query_metrics.query_table.query_table import QueryTable
from great_expectations.render import RenderedStringTemplateContent
from great_expectations.render.components import LegacyDiagnosticRendererType
from great_expectations.render.renderer.renderer import renderer

METRIC = "all_offending_rows_query.table"
SAMPLE_SIZE = 20  # messages shown in Data Docs; the JSON result keeps every row


class AllOffendingRowsQueryTable(QueryTable):
    metric_name = METRIC
    value_keys = ("unexpected_rows_query",)
    query_param_name: ClassVar[str] = "unexpected_rows_query"

    @metric_value(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(
        cls,
        execution_engine: SqlAlchemyExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> list[dict]:
        selectable, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs,
                                                               domain_type=MetricDomainTypes.TABLE)
        batch = selectable.compile(dialect=execution_engine.engine.dialect, compile_kwargs={"literal_binds": True})
        query = cls._get_query_from_metric_value_kwargs(metric_value_kwargs).replace("{batch}", f"({batch})")
        return cls._get_sqlalchemy_records_from_substituted_batch_subquery(
            substituted_batch_subquery=query, execution_engine=execution_engine, fetch_all=True
        )


class ExpectNoOffendingRows(UnexpectedRowsExpectation):
    """Fails when the query returns rows; the rows (per-symbol findings) are the result's details."""

    metric_dependencies: ClassVar[tuple[str, ...]] = (METRIC,)

    def _validate(
        self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
    ) -> dict[str, Any]:
        rows = [_plain(row) for row in metrics[METRIC]]
        sample = [msg for row in rows for msg in (row.get("examples") or [])][:SAMPLE_SIZE]
        return {
            "success": not rows,
            "result": {
                "observed_value": sum(int(row.get("sessions") or 0) for row in rows),
                "unexpected_count": len(rows),
                "partial_unexpected_list": sample,  # what Data Docs lists as sampled unexpected values
                "details": {"unexpected_rows": rows},
            },
        }

    @classmethod
    @renderer(renderer_type=LegacyDiagnosticRendererType.UNEXPECTED_STATEMENT)
    def _diagnostic_unexpected_statement_renderer(
        cls, configuration: Any = None, result: Any = None, runtime_configuration: dict | None = None
    ) -> list[Any]:
        # The stock statement wants element_count/unexpected_percent, which per-symbol findings do not have.
        found = (result.result or {}) if result is not None else {}
        if result is None or result.success or not found.get("unexpected_count"):
            return super()._diagnostic_unexpected_statement_renderer(configuration, result, runtime_configuration)
        return [RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={
                "template": "\n\n$symbols symbol(s) with $sessions offending session(s); first messages below.",
                "params": {"symbols": found["unexpected_count"], "sessions": found.get("observed_value")},
                "tag": "strong", "styling": {"classes": ["text-danger"]},
            },
        )]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values (the queries cast dates to text; counts may come back as Decimal or int)."""
    return {k: (int(v) if k == "sessions" and v is not None else v) for k, v in row.items()}
