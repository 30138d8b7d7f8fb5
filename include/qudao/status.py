"""What ``qudao status`` shows: recent runs, loads, quality gates, publishes."""

from __future__ import annotations

import psycopg

from qudao.warehouse.schema import ensure_schema


def _table(rows: list[tuple], headers: tuple[str, ...]) -> list[str]:
    cells = [tuple("" if v is None else str(v) for v in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ["  " + fmt.format(*headers), *("  " + fmt.format(*r) for r in cells)]


def status_lines(url: str, limit: int = 10) -> list[str]:
    """Human-readable status of the platform, newest first."""
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        runs = conn.execute(
            """
            select business_date, run_id,
                   string_agg(step || '=' || status, ' ' order by logged_at) as steps,
                   max(logged_at)::timestamp(0) as last_step_at
            from ops.run_log group by business_date, run_id
            order by max(logged_at) desc limit %s
            """,
            (limit,),
        ).fetchall()
        loads = conn.execute(
            """
            select business_date, source || '.' || entity as entity, status,
                   rows_in, rows_loaded, rows_rejected, file_name
            from ops.load_manifest
            where business_date = (select max(business_date) from ops.load_manifest)
            order by source, entity, load_id
            """
        ).fetchall()
        gate = []
        if conn.execute("select to_regclass('ops.gate_runs')").fetchone()[0] is not None:
            gate = conn.execute(
                """
                select business_date, stage, case when passed then 'passed' else 'FAILED' end,
                       errors, warnings, checks, finished_at::timestamp(0), data_docs_path
                from ops.gate_runs order by finished_at desc limit 3
                """
            ).fetchall()
        published = conn.execute(
            """
            select business_date, status, run_id, published_at::timestamp(0)
            from ops.publish_log order by publish_id desc limit %s
            """,
            (limit,),
        ).fetchall()
    out = ["Recent nightly runs (ops.run_log):"]
    out += _table(runs, ("business_date", "run_id", "steps", "last_step_at")) if runs else ["  none yet"]
    out += ["", "Files of the latest loaded business date (ops.load_manifest):"]
    headers = ("date", "entity", "status", "in", "loaded", "rejected", "file")
    out += _table(loads, headers) if loads else ["  none yet"]
    out += ["", "Quality gates (ops.gate_runs; every check in ops.quality_results):"]
    headers = ("business_date", "stage", "outcome", "errors", "warnings", "checks", "finished", "data_docs")
    out += _table(gate, headers) if gate else ["  none yet"]
    out += ["", "Publishes (ops.publish_log):"]
    out += (
        _table(published, ("business_date", "status", "run_id", "published_at"))
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
