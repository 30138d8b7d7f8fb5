"""What ``qudao status`` shows: recent runs, loads, quality gates, publishes."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import psycopg

from qudao.ledger import gates, manifest, outcomes, publishes
from qudao.ledger import runs as ledger_runs
from qudao.warehouse.schema import ensure_schema

#: no status line is wider than this: long values continue on indented lines (only a single
#: word longer than a line, e.g. a very long path, stays whole)
WIDTH = 100


def _wrap(text: str, indent: str = "    ") -> list[str]:
    """``text`` as lines of at most :data:`WIDTH` characters, each starting with ``indent``."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _table(
    rows: list[tuple], headers: tuple[str, ...], below: Callable[[tuple], list[str]] | None = None
) -> list[str]:
    """Aligned columns; ``below(row)`` adds indented lines under a row.

    When the columns do not fit in :data:`WIDTH`, the last one goes under its row
    (``    <header>: <value>``).
    """
    cells = [tuple("" if v is None else str(v) for v in r[: len(headers)]) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    last_below = len(headers) > 1 and 2 + sum(widths) + 2 * (len(widths) - 1) > WIDTH
    shown = len(headers) - 1 if last_below else len(headers)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:shown])
    out = ["  " + fmt.format(*headers[:shown]).rstrip()]
    for row, cell in zip(rows, cells, strict=True):
        out.append("  " + fmt.format(*cell[:shown]).rstrip())
        out += _wrap(f"{headers[-1]}: {cell[-1]}") if last_below else []
        out += below(row) if below else []
    return out


def _data_docs(gate_row: tuple) -> list[str]:
    return _wrap(f"data docs: {gate_row[7]}") if gate_row[7] else []


def status_lines(url: str, limit: int = 10) -> list[str]:
    """Human-readable status of the platform, newest first; no line wider than :data:`WIDTH`."""
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        runs = ledger_runs.recent_runs(conn, limit)
        failures = {r[2]: outcomes.latest_failure(conn, r[2]) for r in runs}
        loads = manifest.latest_date_files(conn)
        gate = gates.recent_gates(conn, 3)
        published = publishes.recent(conn, limit)
    out = ["Recent nightly runs (ops.run_log), each with its steps:"]
    headers = ("business_date", "last_step_at", "run_id")

    def steps(run: tuple) -> list[str]:  # the steps, then what failed (the step's typed outcome)
        failure = failures.get(run[2])
        return _wrap(run[3]) + (_wrap(f"failed: {failure.line()}") if failure else [])

    out += _table(runs, headers, steps) if runs else ["  none yet"]
    if loads:
        out += ["", f"Files of the latest loaded business date, {loads[0][6]} (ops.load_manifest):"]
        out += _table(loads, ("entity", "status", "in", "loaded", "rejected", "file"))
    else:
        out += ["", "Files of the latest loaded business date (ops.load_manifest):", "  none yet"]
    out += ["", "Quality gates (ops.gate_runs; every check in ops.quality_results):"]
    headers = ("business_date", "stage", "outcome", "errors", "warnings", "checks", "finished")
    out += _table(gate, headers, _data_docs) if gate else ["  none yet"]
    out += ["", "Publishes (ops.publish_log):"]
    out += (
        _table(published, ("business_date", "status", "published_at", "run_id"))
        if published
        else ["  none yet"]
    )
    out += ["", 'Query the published marts: qudao sql "select * from marts.mart_channel_coverage limit 5"']
    return out


def published_rows(url: str, business_date: object) -> dict[str, int]:
    """Rows per published ``marts`` table for ``business_date`` (whole tables: all rows)."""
    out: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            """
            select t.table_name,
                   (select c.column_name from information_schema.columns c
                    where c.table_schema = 'marts' and c.table_name = t.table_name
                      and c.column_name in ('as_of_date', 'snapshot_date', 'business_date', 'week_start')
                    order by c.ordinal_position limit 1)
            from information_schema.tables t
            where t.table_schema = 'marts' and t.table_name like 'mart\\_%%'
            order by t.table_name
            """
        ).fetchall()
        for table, date_column in tables:
            if date_column == "week_start":
                where = f"where {date_column} = date_trunc('week', %s::date)::date"
            elif date_column:
                where = f"where {date_column} = %s::date"
            else:
                where = ""
            params = (business_date,) if date_column else ()
            (n,) = conn.execute(f'select count(*) from marts."{table}" {where}', params).fetchone()  # type: ignore[misc]
            out[table] = n
    return out
