"""``qudao report``: render (or regenerate) the weekly bulletin or the monthly report."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--week", help="an ISO week, e.g. 2026-W45 (Monday to Sunday)")
    which.add_argument("--month", help="a month, e.g. 2026-11")
    parser.add_argument(
        "--out", type=Path, help="reports folder (default QUDAO_REPORTS_DIR or .qudao/reports)"
    )
    parser.add_argument("--no-mail", action="store_true", help="write the files only, e-mail nothing")


def latest_published_date(url: str) -> date | None:
    """The last business date in the published marts (the call-back mart has one row per night)."""
    import psycopg

    from qudao.constants import PUBLISHED_SCHEMA

    with psycopg.connect(url) as c:
        try:
            (d,) = c.execute(
                f"select max(business_date) from {PUBLISHED_SCHEMA}.mart_callback_compliance"
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return d


def cmd_report(args: argparse.Namespace) -> int:
    from qudao.metrics.engine import MetricsError
    from qudao.reports.deliver import periods_closed_by, render
    from qudao.reports.periods import parse_month, parse_week
    from qudao.warehouse.connection import warehouse

    try:
        periods = [parse_week(args.week)] if args.week else [parse_month(args.month)] if args.month else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    with warehouse() as url:
        if periods is None:
            latest = latest_published_date(url)
            if latest is None:
                raise SystemExit("no night is published yet: run one first (qudao run --date D)")
            periods = periods_closed_by(latest)
        for period in periods:
            try:
                done = render(url, period, out_dir=args.out, send=not args.no_mail)
            except MetricsError as exc:
                raise SystemExit(str(exc)) from None
            print(done.line(), flush=True)
            print(f"  Excel: {done.xlsx}", flush=True)
    return 0
