"""Benchmark: one night end to end, step by step, on top of a week of history.

Generates ``--history`` days of sample extracts at a scale plus the night after them
into a temporary landing zone, builds and publishes the history (untimed) in two
warehouse databases, then

1. runs the night's parts directly, in process: load every source, ``dbt build``, the
   gate, publish — the floor for this machine;
2. runs the same night through Airflow with ``qudao run`` in the other database, the
   way the scheduler does, and times each part from the run's progress lines (dbt's
   parse state is first reset to that database's, untimed, as its previous night left it);

and prints each part's seconds, the Airflow run's seconds, and the ratio (what
orchestration costs on top of the work). Not a test: nothing is asserted.

    .venv/bin/python bench/one_night.py --scale small        # a few minutes
    .venv/bin/python bench/one_night.py --scale medium       # longer
    .venv/bin/python bench/one_night.py --scale large        # ≈50k partners, ≈1M order lines a day
    .venv/bin/python bench/one_night.py --landing /tmp/large # keep (and reuse) the extracts

Uses ``QUDAO_WAREHOUSE_URL`` when set (two databases are created on it and dropped
afterwards), otherwise an embedded server in a temporary ``QUDAO_HOME``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from qudao.warehouse.connection import warehouse, with_database

NIGHT = date(2026, 11, 8)
QUDAO = [sys.executable, "-m", "qudao.cli"]


def _timed(label: str, fn: Callable[[], Any], timings: dict[str, float]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    timings[label] = time.perf_counter() - t0
    print(f"  {label:<26} {timings[label]:8.1f} s", flush=True)
    return out


def _generate(landing: Path, first: date, scale: str) -> None:
    """Write the extracts once; a landing zone that already holds the night is reused."""
    if (landing / "crm" / NIGHT.isoformat()).is_dir():
        print(f"reusing the extracts in {landing}")
        return
    t0 = time.perf_counter()
    subprocess.run(
        [
            *QUDAO,
            "generate",
            "--landing",
            str(landing),
            "--start",
            first.isoformat(),
            "--end",
            NIGHT.isoformat(),
            "--scale",
            scale,
            "--seed",
            "1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"generated {scale} {first}..{NIGHT} in {time.perf_counter() - t0:.0f} s", flush=True)


def _history(url: str, landing: Path, first: date) -> None:
    """Load, build and publish the days before the night (the state a real night starts from)."""
    from qudao.ingest import load_date
    from qudao.publish import publish
    from qudao.transform import build, manifest_path

    days = [first + timedelta(days=i) for i in range((NIGHT - first).days)]
    if not days:
        return
    t0 = time.perf_counter()
    for day in days:
        report = load_date(url, str(landing), day)
        if not report.ok:
            raise SystemExit(f"loading {day} refused a file: {report.lines()}")
    result = build(url, days[-1], start_date=days[0], log_dir=Path(tempfile.mkdtemp(prefix="qudao-dbt-")))
    if not result.success:
        raise SystemExit("\n".join(result.lines()))
    publish(url, days, f"bench-history-{uuid.uuid4().hex[:8]}", manifest_path(), require_gate=False)
    print(f"  history {days[0]}..{days[-1]} loaded, built, published: {time.perf_counter() - t0:.0f} s")


def _direct(url: str, landing: Path) -> dict[str, float]:
    from qudao.ingest import load_date
    from qudao.publish import publish
    from qudao.quality.gate import run_gate
    from qudao.transform import build, manifest_path

    timings: dict[str, float] = {}
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    for source in ("crm", "call_center", "dealer_sales"):
        _timed(f"load {source}", lambda s=source: load_date(url, str(landing), NIGHT, sources=[s]), timings)
    _timed("raw gate", lambda: run_gate(url, NIGHT, run_id, stage="raw"), timings)
    logs = Path(tempfile.mkdtemp(prefix="qudao-dbt-"))
    _timed("dbt build", lambda: build(url, NIGHT, log_dir=logs), timings)
    _timed("mart gate", lambda: run_gate(url, NIGHT, run_id, stage="candidate"), timings)
    _timed("publish", lambda: publish(url, [NIGHT], run_id, manifest_path()), timings)
    return timings


def _through_airflow(url: str, landing: Path) -> float:
    """``qudao run`` for the night; prints the seconds between its progress lines."""
    from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db
    from qudao.transform import run_dbt

    env = {**os.environ, "QUDAO_WAREHOUSE_URL": url}
    ensure_airflow_db(airflow_env(env))  # a one-time set-up, not part of a night
    # dbt's partial-parse state as this warehouse's previous night left it: the in-process
    # run used the other database, and a new connection profile makes dbt re-parse
    run_dbt(["parse", "--log-level", "none"], url)
    t0 = last = time.perf_counter()
    cmd = [*QUDAO, "run", "--landing", str(landing), "--date", NIGHT.isoformat()]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            now = time.perf_counter()
            print(f"  +{now - last:6.1f} s  {line.rstrip()[:100]}", flush=True)
            last = now
    if child.returncode:
        raise SystemExit(f"qudao run failed with status {child.returncode}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small", choices=("small", "medium", "large"))
    ap.add_argument("--history", type=int, default=7, help="days built and published before the night")
    ap.add_argument("--landing", type=Path, help="keep the extracts here (reused when present)")
    args = ap.parse_args()
    first = NIGHT - timedelta(days=args.history)
    with tempfile.TemporaryDirectory(prefix="qudao-bench-") as tmp:
        root = Path(tmp)
        landing = args.landing or root / "landing"
        _generate(landing, first, args.scale)
        os.environ.setdefault("QUDAO_HOME", str(root / "home"))
        with warehouse() as server:
            names = [f"qudao_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            with psycopg.connect(server, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'create database "{name}"')
            try:
                urls = [with_database(server, name) for name in names]
                print(f"history ({args.history} days), in both databases:")
                for url in urls:
                    _history(url, landing, first)
                print(f"night {NIGHT}, parts in process:")
                timings = _direct(urls[0], landing)
                floor = sum(timings.values())
                print(f"  {'sum of parts':<26} {floor:8.1f} s")
                print(f"night {NIGHT} through Airflow (qudao run):")
                airflow = _through_airflow(urls[1], landing)
                print(f"through Airflow (qudao run): {airflow:.1f} s")
                print(f"ratio qudao run / sum of parts: {airflow / floor:.2f}")
            finally:
                with psycopg.connect(server, autocommit=True) as conn:
                    for name in names:
                        conn.execute(f'drop database if exists "{name}" with (force)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
