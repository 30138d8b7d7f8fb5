"""``qudao metrics list`` and ``qudao metrics query``: the semantic layer on the command line.

Import-light: MetricFlow loads only when a metrics command runs.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``list`` and ``query`` actions of ``qudao metrics``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="{list,query}")
    ls = actions.add_parser("list", help="every metric, its meaning and what it can be grouped by")
    ls.add_argument("--dimensions", action="store_true", help="also list each metric's group-bys")
    q = actions.add_parser("query", help="compute metrics from the published marts")
    q.add_argument("--metrics", type=_names, required=True, help="comma-separated metric names")
    q.add_argument("--group-by", type=_names, default=[], help="e.g. metric_time__week,region__province_name")
    q.add_argument(
        "--where",
        action="append",
        default=[],
        help="e.g. \"{{ Dimension('region__province_name') }} = '江苏省'\"",
    )
    q.add_argument("--start", type=_date, help="first day of metric_time (YYYY-MM-DD)")
    q.add_argument("--end", type=_date, help="last day of metric_time (YYYY-MM-DD)")
    q.add_argument("--order", type=_names, default=[], help="order by these ('-name' descending)")
    q.add_argument("--limit", type=int)
    q.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    q.add_argument("--explain", action="store_true", help="print the SQL instead of running it")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "NaN"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], as_csv: bool = False) -> None:
    """Rows as CSV, or as an aligned text table."""
    if as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_text(v) for v in row] for row in rows])
        return
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([_width(c), *(_width(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(_pad(c, w) for c, w in zip(columns, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(_pad(v, w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def cmd_metrics(args: argparse.Namespace) -> int:
    from qudao.metrics.engine import Metrics, MetricsError
    from qudao.warehouse.connection import warehouse

    if args.action == "list":  # definitions only: no warehouse needed
        infos = Metrics("").list(with_dimensions=args.dimensions)
        rows = [(i.name, i.label, i.type, i.description) for i in infos]
        if args.dimensions:
            rows = [(*r, ", ".join(i.dimensions)) for r, i in zip(rows, infos, strict=True)]
        print_table(
            ["metric", "label", "type", "description"] + (["group_by"] if args.dimensions else []), rows
        )
        return 0
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"--limit must be a positive whole number, not {args.limit}")
    options = {
        "where": args.where,
        "start": args.start,
        "end": args.end,
        "order_by": args.order,
        "limit": args.limit,
    }
    try:
        if args.explain:  # compiling needs no warehouse either
            print(Metrics("").sql(args.metrics, args.group_by, **options))
            return 0
        with warehouse() as url:
            result = Metrics(url).query(args.metrics, args.group_by, **options)
    except MetricsError as exc:
        raise SystemExit(str(exc)) from None
    print_table(result.columns, result.rows, as_csv=args.csv)
    return 0
