"""Write the simulated channel's days to a landing zone, file by file, as the sources deliver them.

Layout: ``<landing>/<source>/<YYYY-MM-DD>/<entity>.<ext>``. Each file is written under a
temporary name and renamed when complete, so a watcher never sees half a file. What
varies by day (encodings, XLSX days, gzip days, timestamp offsets) is decided in
:mod:`qudao_demo.daily`, so a given ``(seed, scale)`` always writes the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from qudao.contracts import ENTITIES, Entity
from qudao_demo import daily
from qudao_demo.world import SCALES, build_world

Progress = Callable[[str], None]
_BY_NAME = {e.qualified: e for e in ENTITIES}
_MODIFIED = re.compile(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>")


@dataclass
class FileWritten:
    path: Path
    rows: int
    encoding: str


@dataclass
class GenerateSummary:
    """What :func:`generate` wrote."""

    landing: Path
    start: date
    end: date
    scale: str
    seed: int
    files: list[FileWritten] = field(default_factory=list)
    seconds: float = 0.0

    def rows_of(self, qualified: str) -> int:
        """Rows written for ``<source>.<entity>`` over the whole range."""
        src, name = qualified.split(".")
        return sum(
            f.rows for f in self.files if f.path.parent.parent.name == src and _entity_of(f.path) == name
        )

    def lines(self) -> list[str]:
        """A short human summary."""
        days = (self.end - self.start).days + 1
        out = [
            f"generated {days} day(s) {self.start}..{self.end} at scale {self.scale} (seed {self.seed}) "
            f"in {self.seconds:.1f}s: {len(self.files)} files under {self.landing}"
        ]
        for e in ENTITIES:
            out.append(f"  {e.qualified:<26} {self.rows_of(e.qualified):>10,} rows")
        return out


def _entity_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


@contextmanager
def _atomic(path: Path, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, mode, **kwargs) as f:
        yield f
    os.replace(tmp, path)


def _write_csv(path: Path, header: Iterable[str], rows: Iterable[list[object]], encoding: str) -> int:
    n = 0
    with _atomic(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(list(header))
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
            n += 1
    return n


def _xlsx_value(v: object) -> object:
    """Numbers as a spreadsheet holds them; ids and times stay text."""
    if isinstance(v, str) and v and v[0].isdigit() and v.replace(".", "", 1).isdigit() and "." in v:
        return float(v)
    return None if v == "" else v


def _write_xlsx(path: Path, header: Iterable[str], rows: Iterable[list[object]], day: date) -> int:
    from openpyxl import Workbook  # only on spreadsheet days

    wb = Workbook(write_only=True)
    stamp = datetime(day.year, day.month, day.day, 23, 0, 0)
    wb.properties.created = wb.properties.modified = stamp
    ws = wb.create_sheet(path.stem)
    ws.append(list(header))
    n = 0
    for row in rows:
        ws.append([_xlsx_value(v) for v in row])
        n += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    wb.save(tmp)
    _fix_zip_times(tmp, stamp)
    os.replace(tmp, path)
    return n


def _fix_zip_times(path: Path, stamp: datetime) -> None:
    """Rewrite a workbook's zip entries with a fixed time, so a seed always gives the same bytes.

    openpyxl stamps ``dcterms:modified`` with the wall clock at save, whatever the
    properties say, so that element is rewritten too.
    """
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    fixed_modified = f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp.isoformat()}Z</dcterms:modified>'
    entries = [
        (info, _MODIFIED.sub(fixed_modified.encode(), data) if info.filename == "docProps/core.xml" else data)
        for info, data in entries
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)


def _write_jsonl(path: Path, records: list[dict[str, object]], gz: bool) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as raw:
        # no file name and no wall-clock time in the gzip header: a seed always gives the same bytes
        binary = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if gz else raw
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return len(records)


class _Day:
    """Writes one business date's files."""

    def __init__(self, landing: Path, day: int, summary: GenerateSummary) -> None:
        self.landing, self.day, self.summary = landing, day, summary
        self.iso = daily.iso_date(day)

    def path(self, e: Entity, ext: str) -> Path:
        return self.landing / e.source / self.iso / f"{e.name}.{ext}"

    def csv(self, qualified: str, rows: Iterable[list[object]], encoding: str = "utf-8") -> None:
        e = _BY_NAME[qualified]
        p = self.path(e, "csv")
        self.summary.files.append(FileWritten(p, _write_csv(p, e.column_names, rows, encoding), encoding))

    def xlsx(self, qualified: str, rows: Iterable[list[object]]) -> None:
        e = _BY_NAME[qualified]
        p = self.path(e, "xlsx")
        n = _write_xlsx(p, e.column_names, rows, date.fromordinal(self.day))
        self.summary.files.append(FileWritten(p, n, "xlsx"))

    def jsonl(self, qualified: str, records: list[dict[str, object]], gz: bool) -> None:
        e = _BY_NAME[qualified]
        p = self.path(e, "jsonl.gz" if gz else "jsonl")
        self.summary.files.append(FileWritten(p, _write_jsonl(p, records, gz), "utf-8"))


def generate(
    landing: str | Path,
    start: date,
    end: date,
    scale: str = "small",
    seed: int = 42,
    progress: Progress | None = None,
) -> GenerateSummary:
    """Write every business date in ``[start, end]`` to ``landing``; deterministic for ``(seed, scale)``.

    Days before ``start`` are simulated without writing, so a day's files are the same
    whichever range it was generated in.
    """
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    t0 = time.perf_counter()
    root = Path(landing)
    summary = GenerateSummary(root, start, end, scale, seed)
    first, last = start.toordinal(), end.toordinal()
    world = build_world(seed, SCALES[scale], last + daily.MAX_RESEND_DAYS)
    filings = daily.filing_index(world, first, last)
    pending: daily.Pending = {}
    previous_visits: list[daily.Row] = []
    warm_up = first - daily.MAX_RESEND_DAYS - 1
    for day in range(warm_up, last + 1):
        st = daily.day_state(world, day)
        if day < first:
            daily.order_lines(world, st, pending, None)
            if day == first - 1:
                previous_visits = daily.visit_rows(world, st)
            continue
        _write_day(world, st, _Day(root, day, summary), filings, pending, previous_visits)
        previous_visits = daily.visit_rows(world, st)
        if progress:
            written = [f for f in summary.files if f.path.parent.name == daily.iso_date(day)]
            progress(f"{daily.iso_date(day)}: {len(written)} files, {sum(f.rows for f in written):,} rows")
    summary.seconds = time.perf_counter() - t0
    return summary


def _write_day(
    world: Any,
    st: daily.DayState,
    out: _Day,
    filings: dict[int, list[tuple]],
    pending: daily.Pending,
    previous_visits: list[daily.Row],
) -> None:
    day = st.day
    enc = daily.crm_encoding(day)
    out.csv("crm.channel_managers", daily.manager_rows(world, day), enc)
    out.csv("crm.products", daily.product_rows(world, day), enc)
    out.csv("crm.partners", daily.partner_rows(world, st), enc)
    out.csv("crm.channel_filings", daily.filing_rows(filings, day), enc)
    visits = daily.visit_rows(world, st) + daily.visit_corrections(world, day, previous_visits)
    out.csv("crm.visits", visits, enc)

    spreadsheet = daily.dealer_xlsx(day)
    orders: list[list[object]] = []
    _, developed = daily.order_lines(world, st, pending, orders.append)
    if spreadsheet and world.scale.orders_xlsx:
        out.xlsx("dealer_sales.orders", orders)
    else:
        out.csv("dealer_sales.orders", orders)
    if spreadsheet:
        out.xlsx("dealer_sales.inventory", daily.inventory_rows(world, st))
    else:
        out.csv("dealer_sales.inventory", daily.inventory_rows(world, st))
    out.jsonl("call_center.calls", daily.call_rows(world, st, developed), daily.calls_gzip(day))


def days(start: date, end: date) -> list[date]:
    """Every date in ``[start, end]``."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
