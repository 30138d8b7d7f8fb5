"""XLSX: the first sheet, row by row, cells read as the text a CSV would carry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

from upath import UPath

from qudao.contracts import Column
from qudao.ingest.errors import FileRefused
from qudao.ingest.expansion import ExpansionLimits, check_xlsx_expansion
from qudao.ingest.header import normalise_header
from qudao.ingest.sink import RowSink, extra_json
from qudao.ingest.validate import RowError

#: workbooks expanding to more than this are streamed (openpyxl), not read whole (calamine):
#: calamine's peak is about twice the expanded XML (200k order lines: 93 MiB, peak ~190 MiB)
IN_MEMORY_BYTES = 100 << 20


def cell_value(value: Any, col: Column | None) -> str:
    """An XLSX cell value as the text a CSV would carry, read by the column's type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if col is not None and col.type == "date" and value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def xlsx_rows(
    path: UPath, limits: ExpansionLimits | None = None
) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """Header (row 1 of the first sheet) and an iterator of (row number, cell values).

    Read with python-calamine (Rust): whole rows come back as Python values, no per-cell
    objects. The workbook's parts are checked first (:func:`check_xlsx_expansion`): no part
    may expand past the limits nor past the size the ZIP directory declares. Calamine holds
    the whole sheet in memory, so a workbook expanding past :data:`IN_MEMORY_BYTES` is
    streamed row by row with openpyxl's read-only mode instead (slower, flat memory).
    """
    from python_calamine import CalamineError, CalamineWorkbook

    with path.open("rb") as raw:
        if check_xlsx_expansion(raw, path.name, limits) > IN_MEMORY_BYTES:
            return _streamed_rows(path)
        try:
            wb = CalamineWorkbook.from_filelike(raw)
            sheet = wb.get_sheet_by_index(0) if wb.sheet_names else None
        except (CalamineError, OSError, ValueError) as exc:
            raise FileRefused(f"{path.name}: unreadable: not an XLSX workbook ({exc})") from exc
        except Exception as exc:  # the reader raises a range of its own errors for broken files
            cause = f"{type(exc).__name__}: {exc}"
            raise FileRefused(f"{path.name}: unreadable: not an XLSX workbook ({cause})") from exc
    if sheet is None:
        wb.close()
        raise FileRefused(f"{path.name}: unreadable: workbook has no sheet")
    start = sheet.start
    rows = sheet.iter_rows()
    first = next(rows, None) if start is not None else None
    if first is None:
        wb.close()
        raise FileRefused(f"{path.name}: unreadable: first sheet is empty, no header row")
    pad: list[Any] = [None] * start[1]  # type: ignore[index]  # the reader drops empty leading columns
    cells = [*pad, *first]
    while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
        cells.pop()
    header = normalise_header(cells)

    def body() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(rows, start=2):
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
                    continue
                yield number, [*pad, *row]
        except Exception as exc:
            raise FileRefused(f"{path.name}: unreadable: broken XLSX sheet ({exc})") from exc
        finally:
            wb.close()

    return header, body()


def _streamed_rows(path: UPath) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """:func:`xlsx_rows` for a large workbook: openpyxl's read-only mode, one row at a time."""
    from openpyxl import load_workbook

    raw = path.open("rb")
    try:
        wb = load_workbook(raw, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises a range of its own errors for broken files
        raw.close()
        cause = f"{type(exc).__name__}: {exc}"
        raise FileRefused(f"{path.name}: unreadable: not an XLSX workbook ({cause})") from exc
    if not wb.worksheets:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: workbook has no sheet")
    rows = wb.worksheets[0].iter_rows(values_only=True)
    try:
        first = next(rows, None)
    except Exception as exc:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: broken XLSX sheet ({exc})") from exc
    if first is None:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: first sheet is empty, no header row")
    cells = list(first)
    while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
        cells.pop()
    header = normalise_header(cells)

    def body() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(rows, start=2):
                values = list(row)
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                    continue
                yield number, values
        except Exception as exc:
            raise FileRefused(f"{path.name}: unreadable: broken XLSX sheet ({exc})") from exc
        finally:
            wb.close()
            raw.close()

    return header, body()


def feed_xlsx(sink: RowSink, rows: Iterable[tuple[int, list[Any]]]) -> None:
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
            extra = extra_json((name, texts[i]) for i, name in plan.extra) if plan.extra else ""
        except RowError as exc:
            sink.reject(number, raw, str(exc))
            continue
        sink.row([texts[i] for i in plan.field_index], number, raw, extra)


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
