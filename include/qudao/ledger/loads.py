"""The loads ledger: all reads and writes of the load manifest, rejected rows and schema drift.

The tables: ``ops.load_manifest``, ``ops.rejected_rows``, ``ops.schema_drift``.

One manifest row per delivered file and attempt (``loading`` → ``loaded``, or
``refused``, ``skipped_duplicate``, ``unexpected``); a rerun of a file supersedes the
earlier row. The ingest package calls these functions and writes no SQL on ``ops``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

import psycopg

#: columns of ``ops.rejected_rows`` in the order a rejects stream carries them (COPY text)
REJECT_COLUMNS = (
    "load_id",
    "source",
    "entity",
    "business_date",
    "file_name",
    "line_number",
    "raw_text",
    "reason",
)


@dataclass(frozen=True)
class FileFacts:
    """What the manifest records of one delivered file, once per file."""

    source: str
    entity: str
    business_date: date
    path: str
    file_name: str
    sha256: str
    size_bytes: int
    encoding: str | None


@dataclass(frozen=True)
class LoadCounts:
    """The outcome of a loaded file, as :func:`finish_load` records it."""

    rows_in: int
    rows_loaded: int
    rows_rejected: int
    lines_in: int
    lines_blank: int
    lines_continued: int
    reject_share: float
    reject_threshold: float
    over_threshold: bool
    drift_columns: list[str] | None
    size_bytes: int


def find_duplicate(
    conn: psycopg.Connection, source: str, entity: str, sha256: str, business_date: date, same_date_only: bool
) -> tuple[int, date] | None:
    """(load id, business date) of a live load with the same bytes, or None.

    ``same_date_only``: only a load for ``business_date`` counts (a daily snapshot may repeat
    yesterday's bytes, and an empty delivery is that date's delivery, not a resend).
    """
    row = conn.execute(
        "select load_id, business_date from ops.load_manifest where source = %s and entity = %s"
        " and sha256 = %s and status = 'loaded' and superseded_at is null"
        " and (business_date = %s or not %s) order by load_id limit 1",
        (source, entity, sha256, business_date, same_date_only),
    ).fetchone()
    return (row[0], row[1]) if row is not None else None


def record_duplicate(conn: psycopg.Connection, facts: FileFacts, duplicate_of: int, error: str) -> int | None:
    """Record a file skipped because its bytes were loaded already; its load id."""
    row = conn.execute(
        "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
        " size_bytes, encoding, status, duplicate_of, error, finished_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, 'skipped_duplicate', %s, %s, now())"
        " returning load_id",
        (*_facts(facts), duplicate_of, error),
    ).fetchone()
    return row[0] if row else None


def start_load(conn: psycopg.Connection, facts: FileFacts) -> int:
    """Open the manifest row of a load (status ``loading``, size filled in by :func:`finish_load`)."""
    row = conn.execute(
        "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
        " size_bytes, encoding, status, started_at) values (%s, %s, %s, %s, %s, %s, 0, %s,"
        " 'loading', clock_timestamp()) returning load_id",
        (
            facts.source,
            facts.entity,
            facts.business_date,
            facts.path,
            facts.file_name,
            facts.sha256,
            facts.encoding,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def earlier_loads(conn: psycopg.Connection, facts: FileFacts, load_id: int) -> list[int]:
    """Live loads of the same file name, entity and date other than ``load_id`` (a rerun replaces them)."""
    return [
        r[0]
        for r in conn.execute(
            "select load_id from ops.load_manifest where source = %s and entity = %s"
            " and business_date = %s and file_name = %s and load_id <> %s and superseded_at is null",
            (facts.source, facts.entity, facts.business_date, facts.file_name, load_id),
        )
    ]


def supersede(conn: psycopg.Connection, previous: Sequence[int], by: int) -> None:
    """Mark ``previous`` loads superseded by ``by`` and drop their rejects (their raw rows: the caller)."""
    conn.execute("delete from ops.rejected_rows where load_id = any(%s)", (list(previous),))
    conn.execute(
        "update ops.load_manifest set superseded_at = now(), superseded_by = %s where load_id = any(%s)",
        (by, list(previous)),
    )


def record_rejects(conn: psycopg.Connection, rows: IO[str]) -> None:
    """Stream rejects (COPY text lines in :data:`REJECT_COLUMNS` order) into ``ops.rejected_rows``."""
    with conn.cursor().copy(
        f"copy ops.rejected_rows ({', '.join(REJECT_COLUMNS)}) from stdin (format text)"
    ) as copy:
        while block := rows.read(1 << 20):
            copy.write(block)


def record_drift(
    conn: psycopg.Connection, load_id: int, facts: FileFacts, kind: str, columns: Sequence[str]
) -> None:
    """One ``ops.schema_drift`` row per column (``kind``: extra_column / missing_column)."""
    for name in columns:
        conn.execute(
            "insert into ops.schema_drift (load_id, source, entity, business_date, file_name,"
            " column_name, kind) values (%s, %s, %s, %s, %s, %s, %s)",
            (load_id, facts.source, facts.entity, facts.business_date, facts.file_name, name, kind),
        )


def finish_load(conn: psycopg.Connection, load_id: int, counts: LoadCounts) -> None:
    """Close a load's manifest row as ``loaded`` with its counts."""
    conn.execute(
        "update ops.load_manifest set status = 'loaded', rows_in = %s, rows_loaded = %s,"
        " rows_rejected = %s, lines_in = %s, lines_blank = %s, lines_continued = %s,"
        " reject_share = %s, reject_threshold = %s, over_threshold = %s,"
        " drift_columns = %s, size_bytes = %s, finished_at = clock_timestamp() where load_id = %s",
        (
            counts.rows_in,
            counts.rows_loaded,
            counts.rows_rejected,
            counts.lines_in,
            counts.lines_blank,
            counts.lines_continued,
            counts.reject_share,
            counts.reject_threshold,
            counts.over_threshold,
            counts.drift_columns,
            counts.size_bytes,
            load_id,
        ),
    )


def mark_refused(
    conn: psycopg.Connection, facts: FileFacts, error: str | None, quarantined_to: str | None, seconds: float
) -> int | None:
    """Record a file refused whole (in its own transaction); its load id."""
    with conn.transaction():
        row = conn.execute(
            "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
            " size_bytes, encoding, status, error, quarantined_to, started_at, finished_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, 'refused', %s, %s,"
            " now() - make_interval(secs => %s), now()) returning load_id",
            (*_facts(facts), error, quarantined_to, seconds),
        ).fetchone()
    return row[0] if row else None


def record_unexpected(
    conn: psycopg.Connection,
    business_date: date,
    sources: Sequence[str],
    files: Sequence[tuple[str, str, str, str]],
    entity_marker: str,
) -> None:
    """Replace the date's listing of unexpected files: ``files`` are (source, path, file name, error)."""
    with conn.transaction():
        conn.execute(
            "update ops.load_manifest set superseded_at = now() where business_date = %s"
            " and status = 'unexpected' and superseded_at is null and source = any(%s)",
            (business_date, list(sources)),
        )
        for source, path, name, error in files:
            conn.execute(
                "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
                " size_bytes, status, error, finished_at) values (%s, %s, %s, %s, %s, '', 0,"
                " 'unexpected', %s, now())",
                (source, entity_marker, business_date, path, name, error),
            )


def _facts(f: FileFacts) -> tuple[Any, ...]:
    return (f.source, f.entity, f.business_date, f.path, f.file_name, f.sha256, f.size_bytes, f.encoding)
