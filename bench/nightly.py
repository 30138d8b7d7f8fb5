"""Benchmark: does the nightly dbt step follow the day's volume or the history's?

Generates ``--long + 1`` days of sample extracts at a scale, then, in one run against
one PostgreSQL, builds two warehouses:

- **short**: the first ``--short`` days loaded and built (a first, full build), then
  one further night loaded and built the way the DAG builds it (incremental);
- **long**: the first ``--long`` days loaded and built, then one further night.

It prints the dbt step of each further night (``dbt build``: models and tests), the
ratio long / short (issue 4's target ≤ 1.5, issue 11's ≤ 1.2), and the models and tests that cost
most in the long night. Not a test: nothing is asserted.

    .venv/bin/python bench/nightly.py                          # medium, 7 vs 90 days
    .venv/bin/python bench/nightly.py --scale small --long 30  # a quick look
    .venv/bin/python bench/nightly.py --landing /tmp/medium    # keep (and reuse) the extracts

Uses ``QUDAO_WAREHOUSE_URL`` when set (two databases are created on it and dropped
afterwards), otherwise an embedded server in a temporary ``QUDAO_HOME``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from qudao.warehouse.connection import warehouse, with_database
from qudao_demo import generate

FIRST = date(2026, 6, 1)


def _load(url: str, landing: Path, day: date) -> None:
    from qudao.ingest import load_date

    report = load_date(url, str(landing), day)
    if not report.ok:
        raise SystemExit(f"loading {day} refused a file: {report.lines()}")


def _slowest(result: Any, n: int) -> list[str]:
    """The ``n`` slowest nodes of a dbt invocation."""
    nodes = sorted(result.nodes, key=lambda r: r.seconds, reverse=True)[:n]
    return [f"{r.seconds:7.2f} s  {r.unique_id.split('.', 2)[-1]}" for r in nodes]


def _history(url: str, landing: Path, days: int) -> tuple[float, list[str]]:
    """Load and build ``days`` days, then load one more night and time its dbt step."""
    from qudao.transform import build
    from qudao.warehouse.schema import ensure_schema

    with psycopg.connect(url) as conn:
        ensure_schema(conn)
    t0 = time.perf_counter()
    for offset in range(days):
        _load(url, landing, FIRST + timedelta(days=offset))
    last = FIRST + timedelta(days=days - 1)
    print(f"  loaded {days} days in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    first = build(url, last)
    if not first.success:
        raise SystemExit("\n".join(first.lines()))
    print(f"  first (full) build of {days} days: {time.perf_counter() - t0:.0f} s", flush=True)
    night = last + timedelta(days=1)
    _load(url, landing, night)
    t0 = time.perf_counter()
    result = build(url, night)
    seconds = time.perf_counter() - t0
    if not result.success:
        raise SystemExit("\n".join(result.lines()))
    print(f"  dbt step of night {night}: {seconds:.1f} s", flush=True)
    return seconds, _slowest(result, 8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="medium", choices=("small", "medium", "large"))
    ap.add_argument("--short", type=int, default=7, help="days of history of the short warehouse")
    ap.add_argument("--long", type=int, default=90, help="days of history of the long warehouse")
    ap.add_argument(
        "--landing",
        type=Path,
        help="keep the generated extracts in this folder and reuse them when it already holds them",
    )
    args = ap.parse_args()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"qudao history benchmark, {now}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="qudao-bench-history-") as tmp:
        root = Path(tmp)
        landing = args.landing or root / "landing"
        marker = landing / f".generated-{args.scale}-{FIRST}-{args.long + 1}"
        if marker.exists():
            print(f"reusing the extracts in {landing}")
        else:
            t0 = time.perf_counter()
            generate(landing, FIRST, FIRST + timedelta(days=args.long), scale=args.scale, seed=1)
            marker.touch()
            seconds = time.perf_counter() - t0
            print(f"generated {args.long + 1} {args.scale} days in {seconds:.0f} s", flush=True)
        os.environ.setdefault("QUDAO_HOME", str(root / "home"))
        with warehouse() as server:
            names = [f"qudao_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            with psycopg.connect(server, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'create database "{name}"')
            try:
                print(f"short: {args.short} days of history")
                short, _ = _history(with_database(server, names[0]), landing, args.short)
                print(f"long: {args.long} days of history")
                long, slowest = _history(with_database(server, names[1]), landing, args.long)
            finally:
                with psycopg.connect(server, autocommit=True) as conn:
                    for name in names:
                        conn.execute(f'drop database if exists "{name}" with (force)')
    print(f"\nnightly dbt step after {args.short:>3} days: {short:6.1f} s")
    print(f"nightly dbt step after {args.long:>3} days: {long:6.1f} s")
    print(f"ratio long / short: {long / short:.2f}   (issue 11's target ≤ 1.2)")
    print("slowest nodes of the long night:")
    for line in slowest:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
