"""``step_task``: a ``@task`` for steps that take earlier tasks' (large) outputs, with none of them rendered.

Used by the trading steps (features, signals, risk decisions, orders) and the ingestion DAG's ``load_bars`` (one
summary per symbol): see ``step_task`` for what it saves, README "Benchmarks" (P8) for the measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk.bases.decorator import task_decorator_factory


class StepOperator(_PythonDecoratedOperator):
    """The operator of ``step_task``: arguments resolved from XCom when the step runs, none of them rendered."""

    template_fields: Sequence[str] = ()  # nothing rendered, so nothing uploaded as the task's rendered fields
    template_fields_renderers: dict[str, str] = {}

    def __init__(self, **kwargs: Any) -> None:
        from airflow.sdk.definitions.xcom_arg import XComArg

        # the output is in XCom: not also formatted into the log (100s of KB a step); step_summary logs one line
        kwargs.setdefault("show_return_value_in_logs", False)
        super().__init__(**kwargs)
        # Airflow draws the edges from the XComArgs in template fields; these are not: drawn here, as it would
        XComArg.apply_upstream_relationship(self, self.op_args)
        XComArg.apply_upstream_relationship(self, self.op_kwargs)

    def execute(self, context: Any) -> Any:
        # what rendering the fields would have done: each XComArg argument becomes the upstream task's value
        self.op_args = self.render_template(self.op_args, context)
        self.op_kwargs = self.render_template(self.op_kwargs, context)
        result = super().execute(context)
        self.log.info("returned %s", step_summary(result))
        return result


def step_summary(value: Any, per_group: int = 8) -> str:
    """One line for the task log in place of a step's whole output: its fields, collections by size, per-symbol
    items grouped by their status or action (``signals 3: BUY NVDA | HOLD AAPL, MSFT``), the keys of a mapping by
    name (``loaded 2: AAPL, MSFT``), at most ``per_group`` names a group; the run is left out."""
    if not isinstance(value, dict):
        return repr(value)[:200]
    parts = []
    for key, item in value.items():
        if key == "run":
            continue
        rows = list(item.values()) if isinstance(item, dict) else item
        if isinstance(rows, list | tuple) and rows and all(isinstance(r, dict) and "symbol" in r for r in rows):
            field = next((f for f in ("status", "action") if f in rows[0]), None)
            if field is not None:
                groups: dict[str, list[str]] = {}
                for r in rows:
                    groups.setdefault(str(r.get(field)), []).append(str(r["symbol"]))
                parts.append(f"{key} {len(rows)}: " + " | ".join(f"{k} {_names(v, per_group)}"
                                                                 for k, v in groups.items()))
                continue
        if isinstance(item, dict) and 0 < len(item) <= 6 and all(isinstance(v, int | float) for v in item.values()):
            parts.append(f"{key} {item}")  # a few counts or amounts: shown
        elif isinstance(item, dict) and item and all(isinstance(k, str) for k in item):  # by symbol: named
            parts.append(f"{key} {len(item)}: {_names(list(item), per_group)}")
        elif isinstance(item, dict | list | tuple):
            parts.append(f"{key} {len(item)}")
        elif isinstance(item, float):
            parts.append(f"{key} {round(item, 3)!r}")  # seconds and amounts: not 5.441858507999996
        else:
            parts.append(f"{key} {item!r}"[:80])
    return "; ".join(parts)


def _names(names: list[str], most: int) -> str:
    """``A, B, C +N``: the first ``most`` names, then how many more."""
    return ", ".join(names[:most]) + (f" +{len(names) - most}" if len(names) > most else "")


def step_task(**kwargs: Any) -> Any:
    """``@task`` for the steps that take earlier steps' outputs (the run, features, signals, risk decisions, staged
    bars).

    Their arguments are pulled from XCom before the function runs, as with ``@task``, but they are not template
    fields: Airflow would otherwise, in each task process before the step runs, walk, redact and upload them as the
    task's rendered fields (a row in the metadata database, shown cut to 4,096 characters in the UI), the same data
    the upstream task's XCom already holds; nor is the output written into the task log again. For 100 symbols
    these are 100-300 KB a step, on the path from the trigger to the orders (README, Benchmarks, P8); the step logs
    one line of its output instead (``step_summary``)."""
    return task_decorator_factory(decorated_operator_class=StepOperator, **kwargs)
