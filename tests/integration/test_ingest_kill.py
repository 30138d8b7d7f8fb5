"""A load killed midway (SIGKILL during COPY) leaves nothing of that file; a rerun loads it whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest
from upath import UPath

from qudao.ingest import load_date
from qudao_testing.extracts import write_day, write_orders_csv

pytestmark = pytest.mark.integration

D1 = date(2026, 11, 2)
ROWS = 300_000

_LOAD = (
    "import sys; from qudao.ingest import load_date;"
    " load_date(sys.argv[1], sys.argv[2], sys.argv[3], ['dealer_sales'])"
)


def _copy_backend(conn) -> int | None:
    row = conn.execute(
        "select p.pid from pg_stat_progress_copy p join pg_stat_activity a using (pid)"
        " where a.datname = current_database() and p.tuples_processed > 0"
    ).fetchone()
    return row[0] if row else None


def test_sigkill_during_copy_leaves_nothing_and_a_rerun_loads_everything(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    assert load_date(db_url, str(tmp_path), D1, sources=["crm"]).ok
    write_orders_csv(UPath(tmp_path) / "dealer_sales" / D1.isoformat() / "orders.csv", ROWS, D1)

    proc = subprocess.Popen([sys.executable, "-c", _LOAD, db_url, str(tmp_path), D1.isoformat()])
    try:
        deadline = time.monotonic() + 60
        backend = None
        while backend is None and proc.poll() is None and time.monotonic() < deadline:
            backend = _copy_backend(conn)
            time.sleep(0.005)
        assert backend is not None, "the load finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # the server notices the dead client and rolls its transaction back
    deadline = time.monotonic() + 30
    while conn.execute("select 1 from pg_stat_activity where pid = %s", (backend,)).fetchone():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 0
    assert conn.execute("select count(*) from ops.load_manifest where entity = 'orders'").fetchone()[0] == 0
    assert conn.execute("select count(*) from ops.rejected_rows").fetchone()[0] == 0

    report = load_date(db_url, str(tmp_path), D1, sources=["dealer_sales"])
    orders = report.files[0]
    assert (orders.entity, orders.status, orders.rows_in, orders.rows_loaded) == (
        "orders",
        "loaded",
        ROWS,
        ROWS,
    )
    assert conn.execute(
        "select count(*), count(distinct (order_id, order_line)), max(_line_number)"
        " from raw.dealer_sales__orders"
    ).fetchone() == (ROWS, ROWS, ROWS + 1)
    assert conn.execute(
        "select status, rows_in, rows_loaded from ops.load_manifest where entity = 'orders'"
    ).fetchall() == [("loaded", ROWS, ROWS)]
