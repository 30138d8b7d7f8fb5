"""End to end: nights that must not publish, run through Airflow, alert a real HTTP receiver.

1. A clean night publishes (its warn-level findings arrive as a digest); a night whose
   orders file is garbage keeps every row (rejected, not lost), the quality gate
   blocks on the reject share, every published table is byte-for-byte unchanged,
   and the alert names the failed check; once the file is fixed the night publishes
   and a recovery notice says so.
2. A night whose call-center extract never arrives: the sensor fails at its deadline
   naming the missing entity, nothing downstream runs, the alert says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import psycopg
import pytest

from qudao.config import PROJECT_ROOT
from qudao.contracts import entity
from qudao.warehouse.connection import with_database

pytestmark = pytest.mark.e2e

GOOD, BAD_ORDERS, NO_CALLS = date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)  # 3-04 orders are CSV


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body.decode("utf-8")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, server_url: str, webhook) -> Iterator[dict]:
    from qudao_demo import generate

    tmp = tmp_path_factory.mktemp("failed-nights")
    landing = tmp / "landing"
    generate(landing, GOOD, NO_CALLS, scale="small", seed=11)
    for p in (landing / "call_center" / NO_CALLS.isoformat()).iterdir():
        p.unlink()
    orders = landing / "dealer_sales" / BAD_ORDERS.isoformat() / "orders.csv"
    original = orders.read_bytes()
    header = ",".join(entity("dealer_sales.orders").column_names)
    lines = [header] + [f"X{i},1,not-a-date,D0001,,SKU,lots,?,lost,yesterday" for i in range(40)]
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")

    database = f"qudao_e2e_fail_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}"')
        admin.execute(f'create database "{database}"')
    env = dict(os.environ)
    env.update(
        QUDAO_HOME=str(tmp / "home"),
        QUDAO_WAREHOUSE_URL=with_database(server_url, database),
        QUDAO_RETRY_DELAY_SECONDS="1",
        QUDAO_EXTRACTS_POKE_SECONDS="1",
        QUDAO_EXTRACTS_DEADLINE_SECONDS="3",
        QUDAO_PII_KEY="e2e-test-key",
        QUDAO_ALERT_WEBHOOK_URL=webhook[0],
    )
    yield {
        "landing": landing,
        "url": env["QUDAO_WAREHOUSE_URL"],
        "env": env,
        "received": webhook[1],
        "fix_orders": lambda: orders.write_bytes(original),
    }
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}" with (force)')


def qudao_run(setup: dict, night: date) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qudao.cli", "run", "--landing", str(setup["landing"]), "--date", str(night)],
        env=setup["env"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=900,
    )


def _published(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select business_date, status from ops.publish_log order by business_date, status"
        ).fetchall()


def _checksums(url: str) -> dict[str, str]:
    """An md5 of every published table's rows, in a stable order."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            )
        ]
        return {
            t: conn.execute(
                f"select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from marts.{t} x"
            ).fetchone()[0]
            for t in tables
        }


def _kinds(received: list[dict]) -> list[str]:
    return [m["qudao"]["kind"] for m in received]


def test_a_blocked_night_publishes_nothing_and_recovers_after_the_fix(setup: dict) -> None:
    good = qudao_run(setup, GOOD)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    before = _checksums(setup["url"])
    assert len(before) >= 7
    digests = [m for m in setup["received"] if m["qudao"]["kind"] == "digest"]
    assert all("warning" in m["text"] for m in digests)
    setup["received"].clear()

    bad = qudao_run(setup, BAD_ORDERS)
    assert bad.returncode == 1
    assert "failed: check_raw_quality" in bad.stdout  # stopped before dbt ran
    assert "not run: build_marts, check_quality, publish_marts, report_run" in bad.stdout
    with psycopg.connect(setup["url"]) as conn:
        rows_in, loaded, rejected = conn.execute(
            "select rows_in, rows_loaded, rows_rejected from ops.load_manifest"
            " where business_date = %s and entity = 'orders' and superseded_at is null",
            (BAD_ORDERS,),
        ).fetchone()
        assert (rows_in, loaded, rejected) == (40, 0, 40)
        (kept,) = conn.execute(
            "select count(*) from ops.rejected_rows where business_date = %s and entity = 'orders'",
            (BAD_ORDERS,),
        ).fetchone()
        assert kept == 40
    assert _checksums(setup["url"]) == before, "a blocked night leaves every published table as it was"
    assert [d for d, s in _published(setup["url"]) if s == "published"] == [GOOD]
    failures = [m for m in setup["received"] if m["qudao"]["status"] == "failure"]
    assert len(failures) == 1, _kinds(setup["received"])
    text = failures[0]["text"]
    assert BAD_ORDERS.isoformat() in text and "orders" in text and "check_raw_quality" in text, text
    setup["received"].clear()

    setup["fix_orders"]()
    fixed = qudao_run(setup, BAD_ORDERS)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert BAD_ORDERS in [d for d, s in _published(setup["url"]) if s == "published"]
    assert "recovery" in _kinds(setup["received"])


def test_a_missing_extract_fails_at_the_deadline_and_alerts(setup: dict) -> None:
    setup["received"].clear()
    result = qudao_run(setup, NO_CALLS)
    assert result.returncode == 1
    assert "failed: wait_for_extracts" in result.stdout
    assert "missing call_center.calls" in result.stdout
    texts = [json.dumps(m, ensure_ascii=False) for m in setup["received"]]
    assert any("call_center.calls" in t and NO_CALLS.isoformat() in t for t in texts), texts


def test_an_unpublished_night_alerts_at_the_publish_deadline(setup: dict) -> None:
    setup["received"].clear()
    conf = json.dumps({"business_date": NO_CALLS.isoformat()})
    command = ["airflow", "dags", "test", "channel_publish_deadline", "-c", conf]
    result = subprocess.run(
        [sys.executable, "-m", "qudao.cli", *command],
        env=setup["env"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    assert "not published by" in result.stdout + result.stderr
    deadline = [m for m in setup["received"] if m["qudao"]["kind"] == "deadline"]
    assert len(deadline) == 1, [m["qudao"]["kind"] for m in setup["received"]]
    assert NO_CALLS.isoformat() in deadline[0]["text"]
