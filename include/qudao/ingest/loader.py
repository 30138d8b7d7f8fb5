"""Load delivered files into ``raw`` with one transaction per file.

Per file: checksum and encoding pass → duplicate check → one transaction with
the manifest row, the previous load of the same file for the same date removed,
the rows streamed in with ``COPY … FROM STDIN``, rejects and schema drift. A
file refused whole is rolled back, moved to quarantine and recorded as
``refused``; the other files still load. The manifest, rejects and drift are
written through :mod:`qudao.ledger.loads`; the formats live in
:mod:`qudao.ingest.formats`.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from upath import UPath

from qudao.config import settings
from qudao.constants import BUSINESS_TZ_NAME
from qudao.contracts import SOURCES, Entity
from qudao.ingest.errors import FileRefused
from qudao.ingest.foreign_keys import ForeignKeys
from qudao.ingest.formats.csv_files import CsvFile, feed_csv
from qudao.ingest.formats.jsonl_files import feed_jsonl
from qudao.ingest.formats.xlsx_files import feed_xlsx, xlsx_rows
from qudao.ingest.header import check_header
from qudao.ingest.landing import (
    UNEXPECTED_ENTITY,
    OutsideLanding,
    confine,
    delivered_files,
    quarantine,
    relative_name,
    unexpected_files,
)
from qudao.ingest.prescan import Prescan, file_format, prescan
from qudao.ingest.report import FileResult, LoadReport
from qudao.ingest.sink import CopySender, RowSink
from qudao.ingest.validate import RowPlan, copy_escape
from qudao.ledger import loads
from qudao.warehouse.schema import ensure_schema, raw_brin_indexes

log = logging.getLogger("qudao.ingest")

__all__ = ["FileResult", "LoadReport", "load_date", "load_file", "summarize_raw"]


# ----------------------------------------------------------------------------- one file
def _facts(entity: Entity, path: UPath, bd: date, res: FileResult, size: int) -> loads.FileFacts:
    return loads.FileFacts(
        entity.source, entity.name, bd, str(path), path.name, res.sha256 or "", size, res.encoding
    )


def load_file(
    conn: psycopg.Connection,
    landing: str | UPath,
    entity: Entity,
    path: UPath,
    business_date: date,
    reject_threshold: float | None = None,
) -> FileResult:
    """Load one delivered file in one transaction (see the module docstring)."""
    started = time.monotonic()
    threshold = settings().reject_threshold if reject_threshold is None else reject_threshold
    res = FileResult(entity.source, entity.name, str(path), "loading")
    size = 0
    try:
        confine(landing, path, settings().landing_allow_symlinks)
        fmt = file_format(path)
        scan = prescan(path, text=fmt in ("csv", "jsonl"))
        size = scan.size
        res.sha256 = scan.sha256
        res.encoding = {"csv": scan.encoding, "jsonl": "utf-8", "jsonl.gz": "utf-8+gzip"}.get(fmt)
        if scan.has_nul:
            raise FileRefused(f"{path.name}: unreadable: not a {fmt} text file ({scan.binary_cause()})")
        if scan.implausible:
            raise FileRefused(f"{path.name}: unreadable: {scan.implausible}")
        _load_in_transaction(conn, landing, entity, path, business_date, fmt, scan, res, threshold)
    except FileRefused as exc:
        res.status = "refused"
        res.error = str(exc)
        res.rows_in = res.rows_loaded = res.rows_rejected = 0
        res.drift = []
        try:
            if not isinstance(exc, OutsideLanding):  # moving it would move what it points at
                res.quarantined_to = quarantine(landing, path, entity.source, business_date)
        except OSError as move_exc:
            res.error += f" (could not move it to quarantine: {move_exc})"
        log.error("refused %s: %s", path, res.error)
        res.load_id = loads.mark_refused(
            conn,
            _facts(entity, path, business_date, res, size),
            res.error,
            res.quarantined_to,
            time.monotonic() - started,
        )
    except (psycopg.Error, OSError, UnicodeError) as exc:
        # not the file's fault as far as we know: record it, keep the file where it is
        res.status = "refused"
        res.error = f"{path.name}: load failed: {type(exc).__name__}: {exc}".strip()
        res.rows_in = res.rows_loaded = res.rows_rejected = 0
        log.error("failed %s: %s", path, res.error)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        res.load_id = loads.mark_refused(
            conn,
            _facts(entity, path, business_date, res, size),
            res.error,
            res.quarantined_to,
            time.monotonic() - started,
        )
    res.seconds = time.monotonic() - started
    return res


def _load_in_transaction(
    conn: psycopg.Connection,
    landing: str | UPath,
    entity: Entity,
    path: UPath,
    bd: date,
    fmt: str,
    scan: Prescan,
    res: FileResult,
    threshold: float,
) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"qudao.ingest:{entity.qualified}",))
        facts = _facts(entity, path, bd, res, path.stat().st_size)
        # a daily snapshot may repeat yesterday's bytes and still be today's snapshot, and an
        # empty delivery (a header and no row) is that date's delivery, not a resend
        same_date_only = entity.snapshot or _no_rows(fmt, scan, path)
        dup = loads.find_duplicate(conn, entity.source, entity.name, facts.sha256, bd, same_date_only)
        if dup is not None:
            res.status = "skipped_duplicate"
            res.error = None
            res.load_id = loads.record_duplicate(
                conn, facts, dup[0], f"same bytes as load {dup[0]} ({dup[1]})"
            )
            log.info(
                "skipped %s: same bytes (sha256 %s) already loaded as load %s for %s",
                path,
                res.sha256,
                dup[0],
                dup[1],
            )
            return
        load_id = loads.start_load(conn, facts)
        res.load_id = load_id
        conn.execute(f"set local timezone = '{BUSINESS_TZ_NAME}'")
        conn.execute("set local datestyle = 'ISO, YMD'")
        previous = loads.earlier_loads(conn, facts, load_id)
        if previous:
            conn.execute(
                sql.SQL("delete from raw.{} where _load_id = any(%s)").format(
                    sql.Identifier(entity.raw_table)
                ),
                (previous,),
            )
            loads.supersede(conn, previous, load_id)
        drift, missing_optional = _copy_file(conn, entity, path, fmt, scan, bd, load_id, res)
        loads.record_drift(conn, load_id, facts, "extra_column", drift)
        loads.record_drift(conn, load_id, facts, "missing_column", missing_optional)
        res.drift = [f"+{n}" for n in drift] + [f"-{n}" for n in missing_optional]
        res.reject_share = res.rows_rejected / res.rows_in if res.rows_in else 0.0
        res.over_threshold = res.reject_share > threshold
        res.status = "loaded"
        loads.finish_load(
            conn,
            load_id,
            loads.LoadCounts(
                rows_in=res.rows_in,
                rows_loaded=res.rows_loaded,
                rows_rejected=res.rows_rejected,
                lines_in=res.lines_in,
                lines_blank=res.lines_blank,
                lines_continued=res.lines_continued,
                reject_share=res.reject_share,
                reject_threshold=threshold,
                over_threshold=res.over_threshold,
                drift_columns=res.drift or None,
                size_bytes=path.stat().st_size if hasattr(path, "stat") else 0,
            ),
        )
        if res.over_threshold:
            log.warning(
                "%s: %d of %d rows rejected (%.2f%% > %.2f%%)",
                path,
                res.rows_rejected,
                res.rows_in,
                100 * res.reject_share,
                100 * threshold,
            )


def _copy_file(
    conn: psycopg.Connection,
    entity: Entity,
    path: UPath,
    fmt: str,
    scan: Prescan,
    bd: date,
    load_id: int,
    res: FileResult,
) -> tuple[list[str], list[str]]:
    """Stream the rows into raw and the rejects into ops.rejected_rows; return (extra, missing optional)."""
    csv_file: CsvFile | None = None
    xlsx_body: Iterable[tuple[int, list[Any]]] | None = None
    if fmt == "csv":
        csv_file = CsvFile(path, scan.encoding or "utf-8")
        header = csv_file.header
    elif fmt == "xlsx":
        header, xlsx_body = xlsx_rows(path)
    else:
        header = list(entity.column_names)
    try:
        check_header(entity, header, path.name)
        plan = RowPlan(entity, header)
        extra_cols = [name for _, name in plan.extra]
        missing_optional = [c for c in entity.column_names if c not in header]
        targets = [*plan.column_names, "_line_number"]
        if extra_cols or fmt.startswith("jsonl"):
            targets.append("_extra")
        targets += ["_business_date", "_load_id"]  # the file's facts: ops.load_manifest
        suffix = f"\t{bd.isoformat()}\t{load_id}"
        reject_prefix = "\t".join(
            [str(load_id), entity.source, entity.name, bd.isoformat(), copy_escape(path.name)]
        )
        statement = sql.SQL("copy raw.{} ({}) from stdin (format text, null '')").format(
            sql.Identifier(entity.raw_table), sql.SQL(", ").join(map(sql.Identifier, targets))
        )
        fks = ForeignKeys(conn, entity, plan)  # before the COPY: it holds the connection
        with conn.cursor() as cur:
            with cur.copy(statement, writer=CopySender(cur)) as copy:
                sink = RowSink(fks, plan, copy, suffix, reject_prefix)
                if csv_file is not None:
                    feed_csv(sink, csv_file)
                elif xlsx_body is not None:
                    feed_xlsx(sink, xlsx_body)
                else:
                    extra_cols, never = feed_jsonl(sink, entity, path, gz=fmt == "jsonl.gz")
                    required_never = [n for n in never if entity.column(n).required or n in entity.key]
                    if required_never:
                        missing = ", ".join(required_never)
                        raise FileRefused(f"{path.name}: required columns missing: {missing}")
                    missing_optional = never
                sink.finish()
            copied = cur.rowcount
        if copied != sink.rows_loaded:
            raise psycopg.DataError(f"COPY took {copied} rows, {sink.rows_loaded} were sent")
        sink.rejects.seek(0)
        loads.record_rejects(conn, sink.rejects)
        sink.rejects.close()
        res.rows_in, res.rows_loaded, res.rows_rejected = sink.rows_in, sink.rows_loaded, sink.rows_rejected
        _account_lines(res, sink, path, csv_file, scan)
        if res.rows_in != res.rows_loaded + res.rows_rejected:
            raise AssertionError(
                f"{path}: rows in {res.rows_in} != loaded {res.rows_loaded} + rejected {res.rows_rejected}"
            )
        return extra_cols, missing_optional
    finally:
        if csv_file is not None:
            csv_file.close()
        if xlsx_body is not None and hasattr(xlsx_body, "close"):
            xlsx_body.close()  # type: ignore[union-attr]


def _no_rows(fmt: str, scan: Prescan, path: UPath) -> bool:
    """Is the delivery empty: a CSV of a header alone, an empty JSON Lines file?"""
    if fmt == "csv":
        return scan.lines <= 1
    if fmt == "jsonl":
        return scan.size == 0 or scan.lines == 0
    if fmt == "jsonl.gz" and scan.size <= EMPTY_GZIP_BYTES:
        try:
            with path.open("rb") as f:
                return not gzip.decompress(f.read()).strip()
        except (OSError, EOFError):
            return False
    return False  # an XLSX tells only once opened: a resent one stays a duplicate


#: a gzip file larger than this holds rows (an empty one is about 20 bytes)
EMPTY_GZIP_BYTES = 256


def _account_lines(
    res: FileResult, sink: RowSink, path: UPath, csv_file: CsvFile | None, scan: Prescan
) -> None:
    """Every physical line is a record, blank, or a continuation line; else the file is refused whole.

    The CSV line count comes from the bytes (:func:`prescan`), not from the parser, so a
    parse that swallowed lines cannot agree with itself.
    """
    res.lines_blank, res.lines_continued = sink.blank_lines, sink.continued_lines
    if csv_file is not None:
        if csv_file.lines_read != scan.lines:
            raise FileRefused(
                f"{path.name}: refused: records cannot be accounted for: the file has {scan.lines} lines, "
                f"the reader saw {csv_file.lines_read}"
            )
        res.lines_in = scan.lines - 1
    else:
        res.lines_in = sink.rows_in + sink.blank_lines  # JSON Lines and XLSX: one record a line or row
    accounted = sink.rows_in + sink.blank_lines + sink.continued_lines
    if res.lines_in != accounted:
        raise FileRefused(
            f"{path.name}: refused: records cannot be accounted for: {res.lines_in} lines after the header, "
            f"{sink.rows_in} records + {sink.blank_lines} blank + {sink.continued_lines} continuation lines"
        )


# ----------------------------------------------------------------------------- one date
def load_date(
    url: str,
    landing: str,
    business_date: date,
    sources: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Load every delivered file of ``business_date`` for ``sources`` (default: all) into raw.

    Files load in dependency order (CRM snapshots first), each in its own
    transaction. Returns a :class:`LoadReport`; ``report.ok`` is False when any
    file was refused.
    """
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    threshold = settings().reject_threshold
    report = LoadReport(business_date, reject_threshold=threshold)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        grown: dict[str, Entity] = {}
        for entity, path in delivered_files(landing, business_date, sources):
            res = load_file(conn, landing, entity, path, business_date, threshold)
            report.files.append(res)
            if res.status == "loaded":
                grown[entity.raw_table] = entity
            if progress is not None:
                msg = f"{res.qualified} {path.name}: {res.status}"
                if res.status == "loaded":
                    msg += f", {res.rows_loaded} of {res.rows_in} rows ({res.rows_rejected} rejected)"
                if res.error:
                    msg += f": {res.error}"
                progress(msg)
        for entity in grown.values():
            summarize_raw(conn, entity)
        report.unexpected = _record_unexpected(conn, landing, business_date, sources)
        for name in report.unexpected:
            log.warning("unexpected file %s: no contract entity has that name; not loaded", name)
            if progress is not None:
                progress(f"unexpected file {name}: no contract entity has that name; not loaded")
    return report


def _record_unexpected(
    conn: psycopg.Connection, landing: str, business_date: date, sources: Sequence[str] | None
) -> list[str]:
    """List the date's unexpected files in the manifest (replacing an earlier listing); their names."""
    names = []
    files = []
    for path in unexpected_files(landing, business_date, sources):
        source = path.parent.parent.name
        names.append(relative_name(landing, path))
        error = (
            f"{path.name}: no contract entity of {source} has that name (names are exact: "
            "e.g. orders.csv, not Orders.csv); not loaded"
        )
        files.append((source, str(path), path.name, error))
    loads.record_unexpected(conn, business_date, list(sources or SOURCES), files, UNEXPECTED_ENTITY)
    return names


def summarize_raw(conn: psycopg.Connection, entity: Entity) -> None:
    """Index the pages a load appended to ``raw.<entity>`` and refresh its statistics.

    A BRIN index only summarises new pages when asked (or when vacuum gets to them);
    until then every unsummarised range matches any date, and the nightly models' "rows
    of tonight" would read the whole history. ANALYZE lets the planner know tonight's
    date exists.
    """
    for index in raw_brin_indexes(entity):
        conn.execute("select brin_summarize_new_values(%s::regclass)", (f"raw.{index}",))
    conn.execute(sql.SQL("analyze {}").format(sql.Identifier("raw", entity.raw_table)))
