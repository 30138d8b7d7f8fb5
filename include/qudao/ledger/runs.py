"""``ops.run_log``: one row per step of a night, with its typed outcome.

Writers call :func:`log_step`; ``qudao status``, alerts and the night's later steps
read through the functions here, never SQL of their own.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import psycopg

from qudao.ledger.migrate import ensure_current


def log_step(
    conn: psycopg.Connection, run_id: str, business_date: date, step: str, status: str, detail: dict[str, Any]
) -> None:
    """Append one untyped row to ``ops.run_log`` (steps record a typed one: ``ledger.outcomes``)."""
    ensure_current(conn)
    conn.execute(
        "insert into ops.run_log (run_id, business_date, step, status, detail) values (%s, %s, %s, %s, %s)",
        (run_id, business_date, step, status, json.dumps(detail, default=str, ensure_ascii=False)),
    )


def step_detail(
    conn: psycopg.Connection, run_id: str, business_date: date, step: str, key: str, status: str = "success"
) -> Any:
    """``detail -> key`` of the latest ``step`` row with ``status`` of the run and date (None if none)."""
    row = conn.execute(
        "select detail -> %s from ops.run_log where run_id = %s and business_date = %s"
        " and step = %s and status = %s order by logged_at desc limit 1",
        (key, run_id, business_date, step, status),
    ).fetchone()
    return row[0] if row else None


def business_date_of_run(conn: psycopg.Connection, run_id: str) -> date | None:
    """The business date ``ops.run_log`` recorded for ``run_id``, if any."""
    row = conn.execute(
        "select business_date from ops.run_log where run_id = %s order by logged_at desc limit 1", (run_id,)
    ).fetchone()
    return row[0] if row else None


def recent_runs(conn: psycopg.Connection, limit: int) -> list[tuple]:
    """``(business_date, last_step_at, run_id, "step=status …")`` of the latest runs, newest first."""
    return conn.execute(
        """
        select business_date, max(logged_at)::timestamp(0) as last_step_at, run_id,
               string_agg(step || '=' || status, ' ' order by logged_at) as steps
        from ops.run_log group by business_date, run_id
        order by max(logged_at) desc limit %s
        """,
        (limit,),
    ).fetchall()


def where_to_look(run_id: str) -> str:
    """The query that lists ``run_id``'s steps (for people: alerts print it)."""
    return (
        "select logged_at, step, status, kind, sources, failed, detail from ops.run_log"
        f" where run_id = '{run_id}'"
    )
