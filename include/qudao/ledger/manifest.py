"""Reads of the load manifest (``ops.load_manifest``, ``ops.rejected_rows``) for the gate,
``qudao status``, alerts and the night's fingerprint. The loader's writes: ``ledger.loads``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg


def current_files(conn: psycopg.Connection, business_date: date) -> list[tuple]:
    """Current manifest rows of the date: ``(load_id, source, entity, file_name, status, rows_in,
    rows_loaded, rows_rejected, error, lines_in, blank + continued lines)`` by load id."""
    return conn.execute(
        "select load_id, source, entity, file_name, status, rows_in, rows_loaded, rows_rejected, error,"
        " lines_in, coalesce(lines_blank, 0) + coalesce(lines_continued, 0)"
        " from ops.load_manifest where business_date = %s and superseded_at is null order by load_id",
        (business_date,),
    ).fetchall()


def top_reject_reasons(conn: psycopg.Connection, load_id: int, limit: int = 3) -> list[tuple[str, int]]:
    """``(reason, rows)`` of a load's most frequent reject reasons."""
    return conn.execute(
        "select reason, count(*) from ops.rejected_rows where load_id = %s"
        " group by reason order by count(*) desc, reason limit %s",
        (load_id, limit),
    ).fetchall()


def rejected_count(conn: psycopg.Connection, load_id: int) -> int:
    """Rows of ``ops.rejected_rows`` of one load."""
    return conn.execute("select count(*) from ops.rejected_rows where load_id = %s", (load_id,)).fetchone()[0]


def current_deliveries(conn: psycopg.Connection, business_date: date, source: str, entity: str) -> int:
    """Current files of the entity and date that were loaded (or were a duplicate of a loaded one)."""
    return conn.execute(
        "select count(*) from ops.load_manifest where business_date = %s and source = %s and entity = %s"
        " and status in ('loaded', 'skipped_duplicate') and superseded_at is null",
        (business_date, source, entity),
    ).fetchone()[0]


def current_loads_upto(conn: psycopg.Connection, business_date: date) -> Iterator[tuple]:
    """``(load_id, source, entity, business_date, status, sha256)`` of every current load up to the date."""
    yield from conn.execute(
        "select load_id, source, entity, business_date, status, sha256 from ops.load_manifest"
        " where superseded_at is null and business_date <= %s and status <> 'unexpected' order by load_id",
        (business_date,),
    )


def is_loaded(conn: psycopg.Connection, source: str, entity: str, business_date: date, sha256: str) -> bool:
    """Whether a current load of these bytes exists for the entity and date."""
    return (
        conn.execute(
            "select 1 from ops.load_manifest where superseded_at is null and source = %s and entity = %s"
            " and business_date = %s and sha256 = %s and status in ('loaded', 'skipped_duplicate') limit 1",
            (source, entity, business_date, sha256),
        ).fetchone()
        is not None
    )


def latest_date_files(conn: psycopg.Connection) -> list[tuple]:
    """``(entity, status, rows_in, rows_loaded, rows_rejected, file_name, business_date)`` of the
    latest loaded business date, by source, entity, load."""
    return conn.execute(
        """
        select source || '.' || entity as entity, status,
               rows_in, rows_loaded, rows_rejected, file_name, business_date
        from ops.load_manifest
        where business_date = (select max(business_date) from ops.load_manifest)
        order by source, entity, load_id
        """
    ).fetchall()


REFUSED_KEYS = (
    "source",
    "entity",
    "file",
    "status",
    "error",
    "quarantined_to",
    "rows_in",
    "rows_rejected",
    "reject_share",
    "reject_threshold",
)


def refused_files(conn: psycopg.Connection, business_date: date) -> list[dict[str, Any]]:
    """Current files of the date that were refused or rejected too many rows."""
    rows = conn.execute(
        "select source, entity, file_name, status, error, quarantined_to, rows_in, rows_rejected,"
        " reject_share, reject_threshold from ops.load_manifest_current"
        " where business_date = %s and (status = 'refused' or over_threshold)"
        " order by source, entity, load_id",
        (business_date,),
    ).fetchall()
    return [dict(zip(REFUSED_KEYS, r, strict=True)) for r in rows]


def top_rejects(conn: psycopg.Connection, business_date: date, limit: int = 5) -> list[dict[str, Any]]:
    """The date's most frequent ``(entity, reason)`` of rejected rows."""
    rows = conn.execute(
        "select source || '.' || entity, reason, count(*) from ops.rejected_rows"
        " where business_date = %s group by 1, 2 order by 3 desc, 1, 2 limit %s",
        (business_date, limit),
    ).fetchall()
    return [{"entity": e, "reason": r, "rows": n} for e, r, n in rows]


def where_to_look(business_date: date) -> tuple[str, str]:
    """Queries for people: the date's loads, and its rejected rows."""
    return (
        "select source, entity, file_name, status, rows_in, rows_rejected, error"
        f" from ops.load_manifest_current where business_date = '{business_date}'",
        "select entity, line_number, reason, raw_text from ops.rejected_rows"
        f" where business_date = '{business_date}' limit 50",
    )
