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
import tempfile
import threading
import time
from collections import Counter
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
from qudao.warehouse.schema import ensure_schema

log = logging.getLogger("qudao.ingest")

#: CSV files whose header names only contract columns (any order) take the columnar path
#: (:mod:`qudao.ingest.columnar`); tests turn it off to compare it with the row path
COLUMNAR = True

__all__ = ["FileResult", "LoadReport", "analyze_raw", "load_date", "load_file"]


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
        if csv_file is not None and COLUMNAR and not plan.projected:
            sink, copied = _copy_columnar(
                conn, entity, csv_file, fks, plan, statement, suffix, reject_prefix, bd, load_id
            )
        else:
            sink, copied, jsonl_columns = _copy_rows(
                conn, entity, path, fmt, csv_file, xlsx_body, fks, plan, statement, suffix, reject_prefix
            )
            if jsonl_columns is not None:
                extra_cols, missing_optional = jsonl_columns
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


def _copy_columnar(
    conn: psycopg.Connection,
    entity: Entity,
    csv_file: CsvFile,
    fks: ForeignKeys,
    plan: RowPlan,
    text_statement: sql.Composed,
    suffix: str,
    reject_prefix: str,
    bd: date,
    load_id: int,
) -> tuple[RowSink, int]:
    """A CSV in two COPY streams of one transaction: binary for the columnar rows, then text for the rest.

    The rows the columnar checks send the long way (and chunks with quotes) are spooled
    as COPY text while the binary stream runs, then sent in a second COPY.
    """
    from qudao.ingest.columnar import ColumnarLoad  # pyarrow, pgpq: only when a CSV is loaded

    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed below
        max_size=8 << 20, mode="w+", encoding="utf-8"
    )
    try:
        with conn.cursor() as cur:
            sink = RowSink(fks, plan, spool, suffix, reject_prefix)  # type: ignore[arg-type]
            with cur.copy(_binary_statement(entity, plan), writer=CopySender(cur)) as copy:
                binary = ColumnarLoad(sink, copy, bd, load_id)
                feed_csv(sink, csv_file, binary)
                sink.finish()
                binary.close()
            copied = cur.rowcount
            spool.seek(0)
            with cur.copy(text_statement, writer=CopySender(cur)) as copy:
                while block := spool.read(1 << 20):
                    copy.write(block)
            copied += max(cur.rowcount, 0)
        return sink, copied
    finally:
        spool.close()


def _warm_up() -> None:
    from qudao.ingest.columnar import warm_up  # pyarrow: imported only when a CSV is loaded

    warm_up()


def _binary_statement(entity: Entity, plan: RowPlan) -> sql.Composed:
    targets = [*plan.column_names, "_line_number", "_business_date", "_load_id"]
    return sql.SQL("copy raw.{} ({}) from stdin (format binary)").format(
        sql.Identifier(entity.raw_table), sql.SQL(", ").join(map(sql.Identifier, targets))
    )


def _copy_rows(
    conn: psycopg.Connection,
    entity: Entity,
    path: UPath,
    fmt: str,
    csv_file: CsvFile | None,
    xlsx_body: Iterable[tuple[int, list[Any]]] | None,
    fks: ForeignKeys,
    plan: RowPlan,
    statement: sql.Composed,
    suffix: str,
    reject_prefix: str,
) -> tuple[RowSink, int, tuple[list[str], list[str]] | None]:
    """The row path: one COPY text stream, every row checked in Python.

    Returns the sink, the rows COPY took and, for JSON Lines, (extra keys, optional columns never seen).
    """
    jsonl_columns = None
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
                jsonl_columns = (extra_cols, never)
            sink.finish()
        return sink, cur.rowcount, jsonl_columns


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
    delivered = delivered_files(landing, business_date, sources)
    if COLUMNAR and any(path.name.endswith(".csv") for _, path in delivered):
        threading.Thread(target=_warm_up, name="qudao-arrow-warm-up", daemon=True).start()
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        grown: dict[str, Entity] = {}
        per_entity = Counter(e.qualified for e, _ in delivered)
        for entity, path in delivered:
            if per_entity[entity.qualified] > 1:
                names = [p.name for e, p in delivered if e.qualified == entity.qualified]
                res = refuse_ambiguous(conn, entity, path, names, business_date)
            else:
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
            analyze_raw(conn, entity)
        report.unexpected = _record_unexpected(conn, landing, business_date, sources)
        for name in report.unexpected:
            log.warning("unexpected file %s: no contract entity has that name; not loaded", name)
            if progress is not None:
                progress(f"unexpected file {name}: no contract entity has that name; not loaded")
    return report


def refuse_ambiguous(
    conn: psycopg.Connection, entity: Entity, path: UPath, names: Sequence[str], business_date: date
) -> FileResult:
    """Refuse one of several files delivering one entity for one date (``orders.csv`` and ``orders.xlsx``).

    Loading both would load the entity twice; which one is meant only the sender knows.
    Every one of them is refused and recorded, none is loaded or moved: the sender (or
    operator) removes the file that is not meant and the date is loaded again.
    """
    started = time.monotonic()
    res = FileResult(entity.source, entity.name, str(path), "refused")
    res.error = (
        f"{path.name}: refused: {' and '.join(names)} both deliver {entity.qualified} for "
        f"{business_date.isoformat()}; one file per entity and date, so none of them was loaded "
        "(remove the one not meant, then load the date again)"
    )
    log.error("refused %s: %s", path, res.error)
    size = path.stat().st_size if hasattr(path, "stat") else 0
    res.load_id = loads.mark_refused(
        conn, _facts(entity, path, business_date, res, size), res.error, None, time.monotonic() - started
    )
    res.seconds = time.monotonic() - started
    return res


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


#: statistics target of the ANALYZE after a load: it samples 300 times as many rows
RAW_STATISTICS_TARGET = 10


def analyze_raw(conn: psycopg.Connection, entity: Entity) -> None:
    """Tell the planner about the rows a load appended to ``raw.<entity>``: tonight's dates and loads.

    A night's queries find raw's rows by ``_load_id`` and ``_business_date`` (staging's
    copy of the new loads, the raw gate's counts) and read nothing else of raw through
    the planner's statistics, so only those two columns are analyzed, on a sample of
    3,000 rows (their values come in long runs); autovacuum's own ANALYZE keeps the
    other columns'. The BRIN index is summarised by autovacuum (``autosummarize``,
    :func:`qudao.warehouse.schema.raw_table_ddl`): the ranges it has not reached yet are
    the newest load's, which a BRIN scan reads whatever they hold.
    """
    with conn.transaction():
        conn.execute(f"set local default_statistics_target = {RAW_STATISTICS_TARGET}")
        conn.execute(
            sql.SQL("analyze {} (_load_id, _business_date)").format(sql.Identifier("raw", entity.raw_table))
        )
