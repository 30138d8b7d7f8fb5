"""Load delivered files into ``raw`` with one transaction per file.

Per file: checksum and encoding pass → duplicate check → one transaction with
the manifest row, the previous load of the same file for the same date removed,
the rows streamed in with ``COPY … FROM STDIN``, rejects and schema drift. A
file refused whole is rolled back, moved to quarantine and recorded as
``refused``; the other files still load.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import queue
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from upath import UPath

from qudao.config import settings
from qudao.constants import BUSINESS_TZ_NAME
from qudao.contracts import SOURCES, Entity
from qudao.contracts import entity as entity_named
from qudao.ingest.landing import (
    UNEXPECTED_ENTITY,
    OutsideLanding,
    confine,
    delivered_files,
    quarantine,
    relative_name,
    unexpected_files,
)
from qudao.ingest.readers import (
    CsvFile,
    FileRefused,
    JsonRow,
    Prescan,
    cell_value,
    file_format,
    json_value,
    jsonl_rows,
    prescan,
    xlsx_rows,
)
from qudao.ingest.validate import RowError, RowPlan, copy_escape, storable
from qudao.warehouse.schema import ensure_schema, raw_brin_indexes

log = logging.getLogger("qudao.ingest")

#: rows buffered before a write to the COPY stream
BATCH_ROWS = 4096
#: blocks (128 KiB at most each) queued for the COPY sender thread
COPY_QUEUE_BLOCKS = 16


class _CopySender(QueuedLibpqWriter):
    """Sends COPY data from a worker thread, so parsing and the server's work overlap.

    psycopg's queue holds up to 1024 blocks; a short one keeps memory flat when the
    server is the slower side.
    """

    def __init__(self, cursor: psycopg.Cursor[Any]):
        super().__init__(cursor)
        self._queue = queue.Queue(maxsize=COPY_QUEUE_BLOCKS)


@dataclass
class FileResult:
    """What happened to one delivered file."""

    source: str
    entity: str
    path: str
    status: str  # loaded / skipped_duplicate / refused
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    #: physical lines after the header (CSV, JSON Lines) or rows after it (XLSX): every one is a
    #: record (loaded or rejected), blank, or a later line of a record that spans lines
    lines_in: int = 0
    lines_blank: int = 0
    lines_continued: int = 0
    reject_share: float = 0.0
    error: str | None = None
    load_id: int | None = None
    sha256: str | None = None
    encoding: str | None = None
    over_threshold: bool = False
    drift: list[str] = field(default_factory=list)
    quarantined_to: str | None = None
    seconds: float = 0.0

    @property
    def qualified(self) -> str:
        return f"{self.source}.{self.entity}"


@dataclass
class LoadReport:
    """The outcome of :func:`load_date`: one :class:`FileResult` per delivered file."""

    business_date: date
    files: list[FileResult] = field(default_factory=list)
    reject_threshold: float = 0.01
    #: ``<source>/<date>/<name>`` of entries no contract entity names (recorded, not loaded)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when any file was refused whole."""
        return not any(f.status == "refused" for f in self.files)

    @property
    def over_threshold(self) -> list[FileResult]:
        """Loaded files whose reject share is above the threshold (the quality gate fails on them)."""
        return [f for f in self.files if f.over_threshold]

    def lines(self) -> list[str]:
        """A per-file summary table for printing."""
        head = (
            f"{'entity':<26} {'file':<16} {'status':<17} {'in':>9} {'loaded':>9} {'rejected':>9} {'share':>7}"
        )
        out = [f"business date {self.business_date.isoformat()}", head, "-" * len(head)]
        for f in self.files:
            name = f.path.rsplit("/", 1)[-1]
            out.append(
                f"{f.qualified:<26} {name:<16} {f.status:<17} {f.rows_in:>9} {f.rows_loaded:>9} "
                f"{f.rows_rejected:>9} {f.reject_share:>7.2%}"
                + (" OVER THRESHOLD" if f.over_threshold else "")
            )
            if f.drift:
                out.append(f"    schema drift: {', '.join(f.drift)}")
            if f.error:
                out.append(f"    error: {f.error}")
        if not self.files:
            out.append("(no files delivered)")
        for name in self.unexpected:
            out.append(f"unexpected file {name}: no contract entity has that name; not loaded")
        return out


# ----------------------------------------------------------------------------- row sink
class _ForeignKeys:
    """The contract's foreign keys of one file, checked against known keys."""

    def __init__(self, conn: psycopg.Connection, entity: Entity, plan: RowPlan):
        self.checks: list[tuple[int, set[str], int | None, str | None, str]] = []
        self.self_key: int | None = None
        self.self_known: set[str] | None = None
        for fk in entity.foreign_keys:
            idx = plan.position(fk.column)
            if idx is None:
                continue
            ref = entity_named(fk.entity)
            known = {
                r[0]
                for r in conn.execute(
                    sql.SQL("select distinct {c} from raw.{t} where {c} is not null").format(
                        c=sql.Identifier(fk.ref_column), t=sql.Identifier(ref.raw_table)
                    )
                )
            }
            cond_idx, cond_val = (None, None)
            if fk.when is not None:
                cond_idx, cond_val = plan.position(fk.when[0]), fk.when[1]
                if cond_idx is None:
                    continue
            reason = f"{fk.column}: unknown {fk.entity} {fk.ref_column} "
            self.checks.append((idx, known, cond_idx, cond_val, reason))
            if fk.entity == entity.qualified:  # self reference: keys of this file count too
                self.self_key = plan.position(fk.ref_column)
                self.self_known = known
        self.deferrable = self.self_key is not None
        if len(self.checks) == 1 and self.checks[0][2] is None:  # the common case, on the hot path
            idx, known, _, _, reason = self.checks[0]

            def single(values: list[str]) -> str | None:
                v = values[idx]
                return None if v in known or not v else reason + repr(v)

            self.failure = single  # type: ignore[method-assign]

    def failure(self, values: list[str]) -> str | None:
        """The reason the row's foreign keys fail, or None when they hold."""
        for idx, known, cond_idx, cond_val, reason in self.checks:
            v = values[idx]
            if v and v not in known and (cond_idx is None or values[cond_idx] == cond_val):
                return reason + repr(v)
        return None


class _Load:
    """One file's rows on their way into one COPY stream (plus rejects spooled aside)."""

    def __init__(
        self,
        fks: _ForeignKeys,
        plan: RowPlan,
        copy: psycopg.Copy,
        suffix: str,
        reject_prefix: str,
    ):
        self.plan = plan
        self.copy = copy
        self.suffix = suffix
        self.reject_prefix = reject_prefix
        self.fks = fks
        self.rows_in = 0
        self.rows_loaded = 0
        self.rows_rejected = 0
        #: physical lines that are no record of their own: blank ones, and the second and
        #: later lines of records that span lines (quoted line breaks in prose)
        self.blank_lines = 0
        self.continued_lines = 0
        self.rejects = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed after the rejects COPY
            max_size=8 << 20, mode="w+", encoding="utf-8"
        )
        self.pending: list[tuple[list[str], str, int, str, str]] = []  # waiting for a key later in the file
        self.out: list[str] = []

    # the general path (JSON Lines, XLSX, and CSV rows the fast path did not take)
    def row(self, fields: list[str], line: int, raw: str, extra: str = "") -> None:
        plan = self.plan
        joined = "\t".join(fields)
        if plan.fast(joined):
            values = fields
            line_text = joined
        else:
            try:
                if len(fields) != len(plan.columns):
                    raise RowError(f"expected {plan.width} fields, got {len(fields) + len(plan.extra)}")
                values = plan.convert(fields)
            except RowError as exc:
                self.reject(line, raw, str(exc))
                return
            line_text = "\t".join(values)
        self.accept(values, line_text, line, raw, extra)

    def accept(self, values: list[str], line_text: str, line: int, raw: str, extra: str) -> None:
        fks = self.fks
        if fks.checks:
            reason = fks.failure(values)
            if reason is not None:
                if fks.deferrable:
                    self.pending.append((values, line_text, line, raw, extra))
                else:
                    self.reject(line, raw, reason)
                return
            if fks.self_known is not None:
                fks.self_known.add(values[fks.self_key])  # type: ignore[index]
        self.out.append(f"{line_text}\t{line}{extra}{self.suffix}")
        if len(self.out) >= BATCH_ROWS:
            self.flush()

    def reject(self, line: int, raw: str, reason: str) -> None:
        self.rows_rejected += 1
        self.rejects.write(f"{self.reject_prefix}\t{line}\t{copy_escape(raw)}\t{copy_escape(reason)}\n")

    def flush(self) -> None:
        if self.out:
            self.rows_loaded += len(self.out)
            self.out.append("")
            self.copy.write("\n".join(self.out))
            self.out.clear()

    def finish(self) -> None:
        """Settle rows that waited for a key defined later in the same file (agents' parents)."""
        fks = self.fks
        pending, self.pending = self.pending, []
        settled = True
        while pending and settled:  # a parent may itself have waited for its own parent
            settled = False
            still = []
            for item in pending:
                values, line_text, line, _raw, extra = item
                if fks.failure(values) is None:
                    fks.self_known.add(values[fks.self_key])  # type: ignore[union-attr,index]
                    self.out.append(f"{line_text}\t{line}{extra}{self.suffix}")
                    settled = True
                else:
                    still.append(item)
            pending = still
        for values, _text, line, raw, _extra in pending:
            self.reject(line, raw, fks.failure(values) or "unknown foreign key")
        self.flush()


# ----------------------------------------------------------------------------- formats
def _extra_json(pairs: Iterable[tuple[str, Any]]) -> str:
    """The ``_extra`` COPY field (with its leading tab); :class:`RowError` if jsonb cannot hold it."""
    extra = dict(pairs)
    if not storable(extra):
        raise RowError(f"extra columns {', '.join(map(repr, extra))}: NUL, invalid Unicode or NaN")
    return "\t" + copy_escape(json.dumps(extra, ensure_ascii=False))


def _check_header(entity: Entity, header: list[str], name: str) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRefused(f"{name}: duplicate columns: {', '.join(dupes)}")
    known = set(entity.column_names)
    if not known & set(header):
        raise FileRefused(
            f"{name}: unreadable: not a {entity.qualified} file (no contract column in the header)"
        )
    keys = set(entity.key)
    required = [c.name for c in entity.columns if (c.required or c.name in keys) and c.name not in header]
    if required:
        raise FileRefused(f"{name}: required columns missing: {', '.join(required)}")


def _feed_csv(sink: _Load, f: CsvFile) -> None:
    """The hot loop: whole-record chunks → csv.reader → one regex per row → COPY text."""
    plan = sink.plan
    fast = plan.fast
    join = "\t".join
    suffix = sink.suffix
    fks = sink.fks
    has_fk = bool(fks.checks)
    fk_failure = fks.failure
    self_known, self_key = fks.self_known, fks.self_key
    projected = plan.projected
    index = plan.field_index
    extra_idx = plan.extra
    width = plan.width
    for chunk in f.chunks():
        lines = chunk.lines
        base = chunk.first_line
        if not projected and not chunk.quoted:
            _feed_plain_lines(sink, lines, base)
            continue
        reader = csv.reader(lines)
        prev = 0
        out = sink.out
        try:
            for row in reader:
                start = prev
                prev = reader.line_num
                if not row:
                    sink.blank_lines += prev - start
                    continue
                if prev - start > 1:  # a record over several lines: real, or a quote that ran on?
                    if _broken_record(plan, row):
                        _reread_lines(sink, lines[start:prev], base + start)
                        continue
                    sink.continued_lines += prev - start - 1
                sink.rows_in += 1
                line = base + start
                fields = row
                if projected:
                    if len(row) != width:
                        raw = "".join(lines[start:prev]).rstrip("\r\n")
                        sink.reject(line, raw, f"expected {width} fields, got {len(row)}")
                        continue
                    row = [row[i] for i in index]
                s = join(row)
                if fast(s):
                    extra = ""
                    if extra_idx:
                        try:
                            extra = _extra_json((name, fields[i]) for i, name in extra_idx)
                        except RowError as exc:
                            sink.reject(line, "".join(lines[start:prev]).rstrip("\r\n"), str(exc))
                            continue
                    if has_fk and fk_failure(row) is not None:
                        sink.accept(row, s, line, "".join(lines[start:prev]).rstrip("\r\n"), extra)
                        continue
                    if self_known is not None:
                        self_known.add(row[self_key])
                    out.append(f"{s}\t{line}{extra}{suffix}")
                    continue
                _general_record(sink, fields, line, "".join(lines[start:prev]).rstrip("\r\n"))
        except csv.Error as exc:
            where = f"near line {base + prev}"
            raise FileRefused(f"{f.path.name}: unreadable: broken CSV {where} ({exc})") from exc
        sink.flush()


def _general_record(sink: _Load, fields: list[str], line: int, raw: str) -> None:
    """One counted CSV record the fast path did not take: width, drift columns, then the slow path."""
    plan = sink.plan
    if len(fields) != plan.width:
        sink.reject(line, raw, f"expected {plan.width} fields, got {len(fields)}")
        return
    try:
        extra = _extra_json((name, fields[i]) for i, name in plan.extra) if plan.extra else ""
    except RowError as exc:
        sink.reject(line, raw, str(exc))
        return
    row = [fields[i] for i in plan.field_index] if plan.projected else fields
    sink.row(row, line, raw, extra)


def _broken_record(plan: RowPlan, fields: list[str]) -> bool:
    """Is a record that spans lines broken (a quote that never closed swallowed the lines after it)?

    A real multi-line record has the header's width and its line breaks only in prose
    columns (notes, names, reasons) or in columns the contract does not know.
    """
    if len(fields) != plan.width:
        return True
    return any(
        not prose and ("\n" in fields[i] or "\r" in fields[i])
        for i, prose in zip(plan.field_index, plan.prose, strict=True)
    )


def _reread_lines(sink: _Load, lines: list[str], first_line: int) -> None:
    """Judge each physical line of a broken record as a record of its own.

    The line where the quote opened is rejected; the lines it had swallowed load (or are
    rejected) on their own merits, so no delivered row disappears inside another.
    """
    span = len(lines)
    for k, text in enumerate(lines):
        raw = text.rstrip("\r\n")
        if not raw:
            sink.blank_lines += 1
            continue
        sink.rows_in += 1
        line = first_line + k
        if raw.count('"') % 2:
            sink.reject(
                line,
                raw,
                f"a quote opens a field and never closes on this line (it ran on over {span} lines, "
                f"{first_line}–{first_line + span - 1}; each was read again on its own)",
            )
            continue
        _general_record(sink, next(csv.reader([raw]), []), line, raw)


def _feed_plain_lines(sink: _Load, lines: list[str], base: int) -> None:
    """The hotter loop, for chunks without a quote: a CSV record is a line, its fields split at commas.

    Joining csv.reader's fields with tabs gives exactly ``line.replace(",", "\\t")``
    then, so the fast path needs no CSV parsing; other rows take the usual way.
    """
    plan = sink.plan
    fast = plan.fast
    suffix = sink.suffix
    fks = sink.fks
    has_fk = bool(fks.checks)
    fk_failure = fks.failure
    self_known, self_key = fks.self_known, fks.self_key
    width = plan.width
    out = sink.out
    for k, text in enumerate(lines):
        raw = text.rstrip("\r\n")
        if not raw:
            sink.blank_lines += 1  # a blank line is no record (csv.reader yields nothing for it)
            continue
        sink.rows_in += 1
        line = base + k
        s = raw.replace(",", "\t")
        if fast(s):
            if has_fk:
                row = s.split("\t")
                if fk_failure(row) is not None:
                    sink.accept(row, s, line, raw, "")
                    continue
                if self_known is not None:
                    self_known.add(row[self_key])  # type: ignore[index]
            out.append(f"{s}\t{line}{suffix}")
            continue
        row = raw.split(",")
        if len(row) != width:
            sink.reject(line, raw, f"expected {width} fields, got {len(row)}")
            continue
        sink.row(row, line, raw)
    sink.flush()


def _feed_jsonl(sink: _Load, entity: Entity, path: UPath, gz: bool) -> tuple[list[str], list[str]]:
    """Feed JSON Lines rows; return (extra keys seen, contract columns never seen)."""
    names = list(entity.column_names)
    cols = list(entity.columns)
    known = set(names)
    seen: set[str] = set()
    extras_seen: list[str] = []
    objects = 0
    first_other: JsonRow | None = None  # the first line that holds something else than an object
    for r in jsonl_rows(path, gz):
        if r.kind == "blank":
            sink.blank_lines += 1
            continue
        sink.rows_in += 1
        if r.obj is None:
            first_other = first_other or r
            sink.reject(r.line, r.raw, r.error or "not a JSON object")
            continue
        objects += 1
        obj = {str(k).strip().lower(): v for k, v in r.obj.items()}
        extra_keys = [k for k in obj if k not in known]
        extra = "\t"  # JSON Lines always target _extra; empty means null
        if extra_keys:
            try:
                extra = _extra_json((k, obj[k]) for k in extra_keys)
            except RowError as exc:
                sink.reject(r.line, r.raw, str(exc))
                continue
            extras_seen.extend(k for k in extra_keys if k not in extras_seen)
        seen.update(obj)
        fields = [json_value(obj.get(n), c) for n, c in zip(names, cols, strict=True)]
        sink.row(fields, r.line, r.raw, extra)
    if first_other is not None and not objects:
        what = "not valid JSON" if first_other.kind == "invalid" else f"a JSON {first_other.kind}"
        raise FileRefused(
            f"{path.name}: unreadable: no line holds a JSON object (line {first_other.line} is {what}); "
            "JSON Lines carry one object per line"
        )
    never = [n for n in names if n not in seen] if sink.rows_in else []
    return extras_seen, never


def _feed_xlsx(sink: _Load, rows: Iterable[tuple[int, list[Any]]]) -> None:
    plan = sink.plan
    width = plan.width
    columns = [plan.entity.column(h) if h in plan.entity.column_names else None for h in plan.header]
    for number, values in rows:
        sink.rows_in += 1
        while len(values) > width and (values[-1] is None or values[-1] == ""):
            values.pop()
        texts = [cell_value(v, columns[i] if i < width else None) for i, v in enumerate(values)]
        raw = ",".join(_csv_quote(t) for t in texts)
        if len(texts) > width:
            sink.reject(number, raw, f"expected {width} fields, got {len(texts)}")
            continue
        texts += [""] * (width - len(texts))
        try:
            extra = _extra_json((name, texts[i]) for i, name in plan.extra) if plan.extra else ""
        except RowError as exc:
            sink.reject(number, raw, str(exc))
            continue
        sink.row([texts[i] for i in plan.field_index], number, raw, extra)


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# ----------------------------------------------------------------------------- one file
def _manifest_refused(
    conn: psycopg.Connection, res: FileResult, bd: date, path: UPath, size: int, started: float
) -> None:
    with conn.transaction():
        row = conn.execute(
            "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
            " size_bytes, encoding, status, error, quarantined_to, started_at, finished_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, 'refused', %s, %s,"
            " now() - make_interval(secs => %s), now()) returning load_id",
            (
                res.source,
                res.entity,
                bd,
                str(path),
                path.name,
                res.sha256 or "",
                size,
                res.encoding,
                res.error,
                res.quarantined_to,
                time.monotonic() - started,
            ),
        ).fetchone()
        res.load_id = row[0] if row else None


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
        _manifest_refused(conn, res, business_date, path, size, started)
    except (psycopg.Error, OSError, UnicodeError) as exc:
        # not the file's fault as far as we know: record it, keep the file where it is
        res.status = "refused"
        res.error = f"{path.name}: load failed: {type(exc).__name__}: {exc}".strip()
        res.rows_in = res.rows_loaded = res.rows_rejected = 0
        log.error("failed %s: %s", path, res.error)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        _manifest_refused(conn, res, business_date, path, size, started)
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
        dup = conn.execute(
            "select load_id, business_date from ops.load_manifest where source = %s and entity = %s"
            " and sha256 = %s and status = 'loaded' and superseded_at is null"
            " and (business_date = %s or not %s) order by load_id limit 1",
            # a daily snapshot may repeat yesterday's bytes and still be today's snapshot, and an
            # empty delivery (a header and no row) is that date's delivery, not a resend
            (entity.source, entity.name, res.sha256, bd, entity.snapshot or _no_rows(fmt, scan, path)),
        ).fetchone()
        if dup is not None:
            res.status = "skipped_duplicate"
            res.error = None
            row = conn.execute(
                "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
                " size_bytes, encoding, status, duplicate_of, error, finished_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, 'skipped_duplicate', %s, %s, now())"
                " returning load_id",
                (
                    entity.source,
                    entity.name,
                    bd,
                    str(path),
                    path.name,
                    res.sha256,
                    path.stat().st_size,
                    res.encoding,
                    dup[0],
                    f"same bytes as load {dup[0]} ({dup[1]})",
                ),
            ).fetchone()
            res.load_id = row[0] if row else None
            log.info(
                "skipped %s: same bytes (sha256 %s) already loaded as load %s for %s",
                path,
                res.sha256,
                dup[0],
                dup[1],
            )
            return
        load_id = conn.execute(
            "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
            " size_bytes, encoding, status, started_at) values (%s, %s, %s, %s, %s, %s, 0, %s,"
            " 'loading', clock_timestamp()) returning load_id",
            (entity.source, entity.name, bd, str(path), path.name, res.sha256, res.encoding),
        ).fetchone()[0]  # type: ignore[index]
        res.load_id = load_id
        conn.execute(f"set local timezone = '{BUSINESS_TZ_NAME}'")
        conn.execute("set local datestyle = 'ISO, YMD'")
        previous = [
            r[0]
            for r in conn.execute(
                "select load_id from ops.load_manifest where source = %s and entity = %s"
                " and business_date = %s and file_name = %s and load_id <> %s and superseded_at is null",
                (entity.source, entity.name, bd, path.name, load_id),
            )
        ]
        if previous:
            conn.execute(
                sql.SQL("delete from raw.{} where _load_id = any(%s)").format(
                    sql.Identifier(entity.raw_table)
                ),
                (previous,),
            )
            conn.execute("delete from ops.rejected_rows where load_id = any(%s)", (previous,))
            conn.execute(
                "update ops.load_manifest set superseded_at = now(), superseded_by = %s"
                " where load_id = any(%s)",
                (load_id, previous),
            )
        drift, missing_optional = _copy_file(conn, entity, path, fmt, scan, bd, load_id, res)
        for kind, names in (("extra_column", drift), ("missing_column", missing_optional)):
            for name in names:
                conn.execute(
                    "insert into ops.schema_drift (load_id, source, entity, business_date, file_name,"
                    " column_name, kind) values (%s, %s, %s, %s, %s, %s, %s)",
                    (load_id, entity.source, entity.name, bd, path.name, name, kind),
                )
        res.drift = [f"+{n}" for n in drift] + [f"-{n}" for n in missing_optional]
        res.reject_share = res.rows_rejected / res.rows_in if res.rows_in else 0.0
        res.over_threshold = res.reject_share > threshold
        res.status = "loaded"
        conn.execute(
            "update ops.load_manifest set status = 'loaded', rows_in = %s, rows_loaded = %s,"
            " rows_rejected = %s, lines_in = %s, lines_blank = %s, lines_continued = %s,"
            " reject_share = %s, reject_threshold = %s, over_threshold = %s,"
            " drift_columns = %s, size_bytes = %s, finished_at = clock_timestamp() where load_id = %s",
            (
                res.rows_in,
                res.rows_loaded,
                res.rows_rejected,
                res.lines_in,
                res.lines_blank,
                res.lines_continued,
                res.reject_share,
                threshold,
                res.over_threshold,
                res.drift or None,
                path.stat().st_size if hasattr(path, "stat") else 0,
                load_id,
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
        _check_header(entity, header, path.name)
        plan = RowPlan(entity, header)
        extra_cols = [name for _, name in plan.extra]
        missing_optional = [c for c in entity.column_names if c not in header]
        targets = [*plan.column_names, "_line_number"]
        if extra_cols or fmt.startswith("jsonl"):
            targets.append("_extra")
        targets += ["_business_date", "_load_id"]  # the file's name and checksum: ops.raw_files
        suffix = f"\t{bd.isoformat()}\t{load_id}"
        reject_prefix = "\t".join(
            [str(load_id), entity.source, entity.name, bd.isoformat(), copy_escape(path.name)]
        )
        statement = sql.SQL("copy raw.{} ({}) from stdin (format text, null '')").format(
            sql.Identifier(entity.raw_table), sql.SQL(", ").join(map(sql.Identifier, targets))
        )
        fks = _ForeignKeys(conn, entity, plan)  # before the COPY: it holds the connection
        with conn.cursor() as cur:
            with cur.copy(statement, writer=_CopySender(cur)) as copy:
                sink = _Load(fks, plan, copy, suffix, reject_prefix)
                if csv_file is not None:
                    _feed_csv(sink, csv_file)
                elif xlsx_body is not None:
                    _feed_xlsx(sink, xlsx_body)
                else:
                    extra_cols, never = _feed_jsonl(sink, entity, path, gz=fmt == "jsonl.gz")
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
        with conn.cursor().copy(
            "copy ops.rejected_rows (load_id, source, entity, business_date, file_name, line_number,"
            " raw_text, reason) from stdin (format text)"
        ) as copy:
            while block := sink.rejects.read(1 << 20):
                copy.write(block)
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
    res: FileResult, sink: _Load, path: UPath, csv_file: CsvFile | None, scan: Prescan
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
    with conn.transaction():
        conn.execute(
            "update ops.load_manifest set superseded_at = now() where business_date = %s"
            " and status = 'unexpected' and superseded_at is null and source = any(%s)",
            (business_date, list(sources or SOURCES)),
        )
        for path in unexpected_files(landing, business_date, sources):
            source = path.parent.parent.name
            names.append(relative_name(landing, path))
            conn.execute(
                "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256,"
                " size_bytes, status, error, finished_at) values (%s, %s, %s, %s, %s, '', 0,"
                " 'unexpected', %s, now())",
                (
                    source,
                    UNEXPECTED_ENTITY,
                    business_date,
                    str(path),
                    path.name,
                    f"{path.name}: no contract entity of {source} has that name (names are exact: "
                    "e.g. orders.csv, not Orders.csv); not loaded",
                ),
            )
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
