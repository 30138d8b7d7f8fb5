"""Benchmark: one night end to end, step by step, against the cost of its parts.

Generates one business date at a scale into a temporary landing zone, then

1. runs the parts directly, in process: load every source, ``dbt build``, the gate,
   publish — the floor for this machine;
2. runs the same night through Airflow with ``qudao run`` (a fresh warehouse
   database), the way the scheduler does;

and prints each part's seconds, the Airflow run's seconds, and the ratio (what
orchestration costs on top of the work). Not a test: nothing is asserted.

    .venv/bin/python bench/one_night.py --scale small        # about a minute
    .venv/bin/python bench/one_night.py --scale medium       # a few minutes

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
from datetime import date
from pathlib import Path

import psycopg

from qudao.generate import generate
from qudao.warehouse.connection import warehouse, with_database

NIGHT = date(2026, 11, 3)


def _timed(label: str, fn, timings: dict[str, float]):
    t0 = time.perf_counter()
    out = fn()
    timings[label] = time.perf_counter() - t0
    print(f"  {label:<22} {timings[label]:8.1f} s", flush=True)
    return out


def _direct(url: str, landing: Path) -> dict[str, float]:
    from qudao.ingest import load_date
    from qudao.publish import publish
    from qudao.quality.gate import run_gate
    from qudao.transform import build, manifest_path

    timings: dict[str, float] = {}
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    for source in ("crm", "call_center", "dealer_sales"):
        _timed(f"load {source}", lambda s=source: load_date(url, str(landing), NIGHT, sources=[s]), timings)
    _timed("dbt build", lambda: build(url, NIGHT), timings)
    _timed("quality gate", lambda: run_gate(url, NIGHT, run_id), timings)
    _timed("publish", lambda: publish(url, [NIGHT], run_id, manifest_path()), timings)
    return timings


def _through_airflow(url: str, landing: Path) -> float:
    from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db

    env = {**os.environ, "QUDAO_WAREHOUSE_URL": url}
    ensure_airflow_db(airflow_env(env))  # a one-time set-up, not part of a night
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "qudao.cli", "run", "--landing", str(landing), "--date", NIGHT.isoformat()],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small", choices=("small", "medium", "large"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qudao-bench-") as tmp:
        root = Path(tmp)
        landing = root / "landing"
        t0 = time.perf_counter()
        generate(landing, NIGHT, NIGHT, scale=args.scale, seed=1)
        print(f"generated {args.scale} night {NIGHT} in {time.perf_counter() - t0:.1f} s")
        os.environ.setdefault("QUDAO_HOME", str(root / "home"))
        with warehouse() as server:
            names = [f"qudao_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            with psycopg.connect(server, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'create database "{name}"')
            try:
                print("parts, in process:")
                timings = _direct(with_database(server, names[0]), landing)
                floor = sum(timings.values())
                print(f"  {'sum of parts':<22} {floor:8.1f} s")
                airflow = _through_airflow(with_database(server, names[1]), landing)
                print(f"through Airflow (qudao run): {airflow:.1f} s")
                print(f"ratio qudao run / sum of parts: {airflow / floor:.2f}")
            finally:
                with psycopg.connect(server, autocommit=True) as conn:
                    for name in names:
                        conn.execute(f'drop database if exists "{name}" with (force)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
