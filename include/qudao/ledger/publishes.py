"""``ops.publish_log`` and ``ops.publish_backup``: what each publish made visible, and the rows
it replaced (for rollback). The marts tables themselves are ``qudao.publish``'s."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from qudao.ledger.migrate import ensure_current

#: the latest publishes whose backups are kept count these statuses (refused and failed do not)
_PRUNE_BACKUPS = """
delete from ops.publish_backup where publish_id < (
    select coalesce(min(publish_id), 0) from (
        select publish_id from ops.publish_log
        where status in ('published', 'rolled_back', 'publishing')
        order by publish_id desc limit %s
    ) kept
)
"""


def log_publish(conn: psycopg.Connection, run_id: str, business_date: date, status: str, doc: dict) -> int:
    """One row of ``ops.publish_log`` (``refused``, ``failed``, ``publishing``); its publish id."""
    ensure_current(conn)
    return conn.execute(
        "insert into ops.publish_log (run_id, business_date, status, tables)"
        " values (%s, %s, %s, %s) returning publish_id",
        (run_id, business_date, status, json.dumps(doc, default=str, ensure_ascii=False)),
    ).fetchone()[0]


def mark_published(conn: psycopg.Connection, publish_id: int, doc: dict, inputs: dict[str, str]) -> None:
    """The publish is in force: what it wrote and the inputs fingerprint of each of its dates."""
    conn.execute(
        "update ops.publish_log set status = 'published', tables = %s, inputs = %s where publish_id = %s",
        (json.dumps(doc), json.dumps(inputs), publish_id),
    )


def mark_rolled_back(conn: psycopg.Connection, publish_id: int) -> None:
    conn.execute("update ops.publish_log set status = 'rolled_back' where publish_id = %s", (publish_id,))


def prune_backups(conn: psycopg.Connection, keep: int) -> None:
    """Keep the backups of the latest ``keep`` publishes only."""
    conn.execute(_PRUNE_BACKUPS, (keep,))


def backup(
    conn: psycopg.Connection, publish_id: int, name: str, rows: sql.Composable, params: tuple = ()
) -> None:
    """Save ``rows`` (a ``select`` whose rows are saved whole, as ``t``) under ``publish_id`` and ``name``."""
    conn.execute(
        sql.SQL(
            "insert into ops.publish_backup (publish_id, table_name, row_data)"
            " select %s, %s, to_jsonb(t) from ({}) t"
        ).format(rows),
        (publish_id, name, *params),
    )


def saved_rows(table: sql.Composable) -> sql.Composable:
    """``select`` of the rows saved under (``publish_id``, ``table_name``) parameters, typed as ``table``."""
    return sql.SQL(
        "select (jsonb_populate_record(null::{t}, row_data)).* from ops.publish_backup"
        " where publish_id = %s and table_name = %s"
    ).format(t=table)


def latest_in_force(conn: psycopg.Connection) -> tuple[int, str, dict] | None:
    """``(publish_id, run_id, tables doc)`` of the latest publish in force."""
    return conn.execute(
        "select publish_id, run_id, tables from ops.publish_log where status = 'published'"
        " order by publish_id desc limit 1"
    ).fetchone()


def publishes_after(conn: psycopg.Connection, publish_id: int) -> int:
    """Publishes (in force or rolled back) after ``publish_id``: each took a backup slot."""
    return conn.execute(
        "select count(*) from ops.publish_log where publish_id > %s"
        " and status in ('published', 'rolled_back')",
        (publish_id,),
    ).fetchone()[0]


def published_nights(conn: psycopg.Connection) -> list[date]:
    """The business dates of the publishes in force (not refused, failed or rolled back)."""
    if conn.execute("select to_regclass('ops.publish_log') is null").fetchone()[0]:
        return []  # a warehouse nothing was ever published from
    rows = conn.execute(
        "select distinct d::date from ops.publish_log l, jsonb_array_elements_text("
        "coalesce(l.tables -> 'dates', jsonb_build_array(l.business_date::text))) d"
        " where l.status = 'published' order by 1"
    ).fetchall()
    return [d for (d,) in rows]


def is_published(conn: psycopg.Connection, business_date: date) -> bool:
    """Whether a publish in force made ``business_date`` visible."""
    return conn.execute(
        "select exists (select 1 from ops.publish_log where status = 'published'"
        " and (business_date = %s or tables -> 'dates' ? %s))",
        (business_date, business_date.isoformat()),
    ).fetchone()[0]


def ever_published(conn: psycopg.Connection, business_date: date) -> bool:
    """Whether any publish (in force or later rolled back) had ``business_date`` as its date."""
    return bool(
        conn.execute(
            "select 1 from ops.publish_log where business_date = %s and status = 'published' limit 1",
            (business_date,),
        ).fetchone()
    )


def last_of_date(conn: psycopg.Connection, business_date: date) -> tuple[datetime, str | None, str] | None:
    """``(published_at, inputs fingerprint, status)`` of the date's latest publish or rollback."""
    day = business_date.isoformat()
    return conn.execute(
        "select published_at, inputs ->> %s, status from ops.publish_log"
        " where status in ('published', 'rolled_back')"
        " and (business_date = %s or coalesce(tables -> 'dates', '[]') ? %s)"
        " order by publish_id desc limit 1",
        (day, business_date, day),
    ).fetchone()


def last_of_table(conn: psycopg.Connection, table: str) -> tuple[int, str, datetime, dict] | None:
    """``(publish_id, run_id, published_at, what it did to the table)`` of the table's last publish."""
    return conn.execute(
        "select publish_id, run_id, published_at, tables -> 'tables' -> %s from ops.publish_log"
        " where status = 'published' and tables -> 'tables' ? %s order by publish_id desc limit 1",
        (table, table),
    ).fetchone()


def recent(conn: psycopg.Connection, limit: int) -> list[tuple[Any, ...]]:
    """``(business_date, status, published_at, run_id)`` of the latest publish log rows."""
    return conn.execute(
        "select business_date, status, published_at::timestamp(0), run_id"
        " from ops.publish_log order by publish_id desc limit %s",
        (limit,),
    ).fetchall()
