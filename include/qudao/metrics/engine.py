"""Answering metric questions with MetricFlow over the published marts.

MetricFlow compiles a question (metrics, group-bys, filters, a time range) into one
SQL query from the semantic manifest (:mod:`qudao.metrics.manifest`); the query runs
here, in a read-only transaction on the warehouse every command uses, so values come
back as PostgreSQL's types (``Decimal``, ``date``), not strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg

from qudao.metrics.manifest import published, semantic_manifest_json


class MetricsError(ValueError):
    """A question the semantic layer cannot answer (unknown metric or dimension, bad filter)."""


@dataclass(frozen=True)
class MetricInfo:
    """One metric of the semantic layer."""

    name: str
    label: str
    description: str
    type: str
    dimensions: tuple[str, ...] = ()


@dataclass
class MetricResult:
    """The answer to one question: column names, rows, and the SQL that produced them."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str = field(repr=False, default="")

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class _PostgresPlanOnly:
    """The SqlClient MetricFlow needs to render PostgreSQL; queries run through psycopg instead."""

    def __init__(self) -> None:
        from metricflow.protocols.sql_client import SqlEngine
        from metricflow.sql.render.postgres import PostgresSQLSqlPlanRenderer

        self.sql_engine_type = SqlEngine.POSTGRES
        self.sql_plan_renderer = PostgresSQLSqlPlanRenderer()

    def query(self, stmt: str, sql_bind_parameter_set: Any = None) -> Any:
        raise NotImplementedError("qudao.metrics runs queries itself")

    execute = dry_run = query

    def close(self) -> None:
        return None

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"%({bind_parameter_key.lstrip(':')})s"


def _as_datetime(value: date | None, end: bool = False) -> datetime | None:
    if value is None:
        return None
    day = datetime(value.year, value.month, value.day)
    return day.replace(hour=23, minute=59, second=59) if end else day


def _plain(value: Any) -> Any:
    """A day-truncated timestamp (``metric_time__week``, …) as the date it stands for."""
    if isinstance(value, datetime) and value.time() == datetime.min.time():  # in the session's time zone
        return value.date()
    return value


class Metrics:
    """The semantic layer on one warehouse: ``list()`` its metrics, ``query()`` them."""

    def __init__(self, url: str) -> None:
        import json

        from metricflow.engine.metricflow_engine import MetricFlowEngine
        from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
        from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

        self.url = url
        raw = published(semantic_manifest_json())
        self.names = frozenset(m["name"] for m in raw.get("metrics", []))
        manifest = parse_manifest_from_dbt_generated_manifest(json.dumps(raw))
        self._engine = MetricFlowEngine(SemanticManifestLookup(manifest), _PostgresPlanOnly())  # type: ignore[arg-type]

    def list(self, with_dimensions: bool = True) -> list[MetricInfo]:
        """Every metric, by name, with the group-bys it can be sliced by."""
        out = []
        for m in self._engine.list_metrics(include_dimensions=with_dimensions):
            dims = tuple(sorted({d.dunder_name for d in m.dimensions})) if with_dimensions else ()
            out.append(MetricInfo(m.name, m.label or m.name, m.description or "", str(m.type.value), dims))
        return sorted(out, key=lambda i: i.name)

    def sql(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        start: date | None = None,
        end: date | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> str:
        """The SQL MetricFlow compiles the question into."""
        from metricflow.engine.metricflow_engine import MetricFlowQueryRequest, OutputColumnOrderMode
        from metricflow_semantics.errors.error_classes import MetricFlowException

        if not metrics:
            raise MetricsError("name at least one metric (qudao metrics list shows them)")
        unknown = [m for m in metrics if m not in self.names]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], sorted(self.names), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (qudao metrics list shows them)"
            raise MetricsError(f"unknown metric {unknown[0]!r}{hint}")
        if start and end and end < start:
            raise MetricsError(f"--end {end} is before --start {start}")
        request = MetricFlowQueryRequest.create(
            metric_names=list(metrics),
            group_by_names=list(group_by),
            where_constraints=list(where) or None,
            time_constraint_start=_as_datetime(start),
            time_constraint_end=_as_datetime(end, end=True),
            order_by_names=list(order_by) or list(group_by) or None,
            limit=limit,
            output_column_order_mode=OutputColumnOrderMode.INPUT_ORDER,
        )
        try:
            return self._engine.explain(request).sql_statement.sql
        except MetricFlowException as exc:
            raise MetricsError(_summary(str(exc))) from exc

    def query(self, metrics: Sequence[str], group_by: Sequence[str] = (), **kwargs: Any) -> MetricResult:
        """Run the question against the warehouse (read-only) and return its rows."""
        sql = self.sql(metrics, group_by, **kwargs)
        with psycopg.connect(self.url) as conn:
            conn.read_only = True
            try:
                cur = conn.execute(sql)  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable as exc:
                raise MetricsError(
                    f"the published marts lack a table the metrics read ({_summary(str(exc))}):"
                    " publish a night first (qudao run)"
                ) from exc
            except psycopg.errors.DataError as exc:
                raise MetricsError(f"the filter does not fit the data: {_summary(str(exc))}") from exc
            except psycopg.errors.SyntaxError as exc:
                raise MetricsError(f"the --where filter is not valid SQL: {_summary(str(exc))}") from exc
            columns = [c.name for c in cur.description or []]
            rows = [tuple(_plain(v) for v in row) for row in cur.fetchall()]
        return MetricResult(columns, rows, sql)


def _summary(message: str) -> str:
    """MetricFlow's first error in one line: what is wrong, with what input, and its suggestions."""
    import re

    text = message.split("Error #2:")[0]
    what = re.search(r"Message:\s*(.+?)(?:\n\s*\n|Common issues|Suggestions:|Query Input:|$)", text, re.S)
    given = re.search(r"Query Input:\s*(.+?)\n\s*\n", text, re.S)
    hints = re.search(r"Suggestions:\s*(\[.*?\])", text, re.S)
    if not what:
        lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
        return " ".join(lines[:3])[:400]
    out = " ".join(what.group(1).split()).rstrip(".:")
    if given:
        out += f": {' '.join(given.group(1).split())}"
    if hints:
        out += f" (did you mean one of {' '.join(hints.group(1).split())})"
    return out[:600]
