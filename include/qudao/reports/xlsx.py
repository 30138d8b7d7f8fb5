"""The report's tables as an Excel workbook: one sheet per table, frozen header, numbers as numbers."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from qudao.reports.content import Report, Table

_FORMATS = {
    "rate": "0.00%",
    "pp": "+0.00%;-0.00%;0.00%",
    "num": "#,##0.0",
    "int": "#,##0",
    "delta": "+0;-0;0",
}


def _sheet_name(title: str, used: set[str]) -> str:
    name = re.sub(r"[\[\]:*?/\\]", "", title)[:31]
    base, n = name, 2
    while name in used:
        name = f"{base[:28]}_{n}"
        n += 1
    used.add(name)
    return name


def write_xlsx(report: Report, path: Path) -> None:
    """Write every table of ``report`` to ``path``; the file is the same for the same numbers."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    created = report.as_of or report.period.end
    wb.set_properties({"title": f"{report.period.name} {report.period.title}", "created": _midnight(created)})
    header = wb.add_format({"bold": True, "bg_color": "#EEF3F8", "border": 1, "text_wrap": True})
    formats = {k: wb.add_format({"num_format": v}) for k, v in _FORMATS.items()}
    formats["date"] = wb.add_format({"num_format": "yyyy-mm-dd"})
    used: set[str] = set()
    for table in report.tables:
        _sheet(wb.add_worksheet(_sheet_name(table.title, used)), table, header, formats)
    wb.close()


def _midnight(d: date) -> Any:
    from datetime import datetime

    return datetime(d.year, d.month, d.day)


def _sheet(ws: Any, table: Table, header: Any, formats: dict[str, Any]) -> None:
    for j, col in enumerate(table.columns):
        ws.write_string(0, j, col.title, header)
        ws.set_column(j, j, max(10, min(40, 2 * len(col.title) + 2)))
    ws.freeze_panes(1, 0)
    for i, row in enumerate(table.rows, start=1):
        for j, value in enumerate(row):
            kind = table.kind(i - 1, j)
            if value is None:
                ws.write_blank(i, j, None)
            elif isinstance(value, date):
                ws.write_datetime(i, j, _midnight(value), formats["date"])
            elif kind in _FORMATS and not isinstance(value, bool):
                ws.write_number(i, j, float(value), formats[kind])
            else:
                ws.write_string(i, j, str(value))
