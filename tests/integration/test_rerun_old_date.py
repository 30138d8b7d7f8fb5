"""Re-running or republishing a past night never rewinds a published mart (issue 18, item 2).

The three hand-made nights of ``test_marts_numbers`` (Fri 2026-11-06 … Sun 11-08, all in
ISO week 2026-11-02) are loaded, built, gated and published night by night through the
functions the nightly DAG's tasks call. Then night 1 is run again, and night 2 is
corrected (a returned order line was in fact placed, a training visit was an
inspection) and republished. Each time the week of ``mart_visit_compliance`` keeps
every inspection loaded, the later night sees the correction, and at the end every
published table equals a ``--full-refresh`` build of the same loaded data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_marts_numbers import D1, D2, D3, _deliver

from qudao.ingest.loader import load_date
from qudao.orchestration import tasks
from qudao.orchestration.republish import republish
from qudao.publish import night_scope
from qudao.transform import build, manifest_path
from qudao.warehouse.connection import with_database
from qudao.warehouse.schema import ensure_schema

pytestmark = pytest.mark.integration

WEEK = date(2026, 11, 2)
SOURCES = ("crm", "call_center", "dealer_sales")

#: night 2 as corrected: O6 was placed, not returned; V4 was an inspection, not a training
CORRECTED_ORDERS = """\
order_id,order_line,order_date,seller_partner_id,buyer_partner_id,sku,quantity,unit_price,status,updated_at
O2,1,2026-11-06,D0001,A0000002,SKU0001,4,5.00,cancelled,2026-11-07T09:00:00+08:00
O5,1,2026-11-07,D0002,A0000004,SKU0002,3,5.00,placed,2026-11-07T09:00:00+08:00
O6,1,2026-11-07,D0001,A0000006,SKU0002,1,5.00,placed,2026-11-07T12:00:00+08:00
O7,1,2026-10-05,D0001,A0000002,SKU0001,5,5.00,placed,2026-11-07T09:00:00+08:00
"""
CORRECTED_VISITS = """\
visit_id,manager_id,partner_id,visit_type,visited_at,duration_minutes,issues_found,notes,updated_at
V4,M001,A0000006,inspection,2026-11-07T10:00:00+08:00,30,0,巡检,2026-11-07T12:00:00+08:00
"""


@dataclass
class Warehouse:
    url: str
    home: Path
    landing: Path


def run_night(d: date, landing: Path, run_id: str) -> None:
    """What the nightly DAG runs after its sensor: load, build, gate, publish."""
    for source in SOURCES:
        tasks.load_source(source, d, str(landing), run_id)
    tasks.check_raw_quality(d, run_id)
    tasks.build_marts(d, run_id)
    tasks.check_quality(d, run_id)
    tasks.publish_marts(d, run_id)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql, params).fetchall()


def checksums(url: str, schema: str) -> dict[str, str]:
    """md5 over every row of every table of ``marts`` (the same tables read in ``schema``)."""
    tables = [
        t
        for (t,) in query(
            url,
            "select table_name from information_schema.tables where table_schema = 'marts'"
            " and table_type = 'BASE TABLE' order by 1",
        )
    ]
    return {
        t: query(
            url, f"select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from {schema}.{t} x"
        )[0][0]
        for t in tables
    }


def week_rows(url: str) -> list[tuple[Any, ...]]:
    return query(
        url,
        "select manager_id, inspections, partners_inspected, is_compliant, portfolio_inspected_30d,"
        " portfolio_inspected_rate from marts.mart_visit_compliance"
        " where week_start = %s order by manager_id",
        WEEK,
    )


@pytest.fixture(scope="module")
def warehouse(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Nights 11-06, 11-07 and 11-08 published one by one, as the DAG runs them."""
    base = tmp_path_factory.mktemp("rerun")
    name = f"qudao_t_rerun_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    with psycopg.connect(url) as c:
        ensure_schema(c)
    landing = base / "landing"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QUDAO_WAREHOUSE_URL", url)
        env.setenv("QUDAO_HOME", str(base / "home"))
        try:
            for d in (D1, D2, D3):
                _deliver(landing, d)
                run_night(d, landing, f"night-{d}")
            yield Warehouse(url, base / "home", landing)
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [name]
                )
                admin.execute(f'drop database if exists "{name}"')


# ------------------------------------------------------------------------- tests
def test_nights_published_one_by_one_hold_the_full_week(warehouse: Warehouse) -> None:
    # V1, V2, V3 (11-06) and V5 (Sunday 23:30, delivered 11-08) for M001; V6 (11-08) for M002
    assert week_rows(warehouse.url) == [
        ("M001", 4, 3, True, 3, Decimal("0.6000")),
        ("M002", 1, 1, False, 0, Decimal("0.0000")),
    ]
    assert night_scope(warehouse.url, D3).dates == (D3,)
    assert night_scope(warehouse.url, date(2026, 11, 9)).start_date is None


def test_rerun_of_night_1_rebuilds_up_to_the_latest_night_and_changes_nothing(warehouse: Warehouse) -> None:
    before = checksums(warehouse.url, "marts")
    scope = night_scope(warehouse.url, D1)
    assert (scope.start_date, scope.run_date, scope.dates) == (D1, D3, (D1, D2, D3))

    run_night(D1, warehouse.landing, "rerun-1")

    # as known on 11-06 the week had 3 inspections of M001 and none of M002: not what is published
    assert week_rows(warehouse.url) == [
        ("M001", 4, 3, True, 3, Decimal("0.6000")),
        ("M002", 1, 1, False, 0, Decimal("0.0000")),
    ]
    [(published,)] = query(
        warehouse.url,
        "select tables -> 'dates' from ops.publish_log where run_id = 'rerun-1' and status = 'published'",
    )
    assert published == [D1.isoformat(), D2.isoformat(), D3.isoformat()]
    gated = query(
        warehouse.url,
        "select business_date, stage, passed from ops.gate_runs where run_id = 'rerun-1' order by 1, 2",
    )
    # the night's raw gate and dbt tests, then the marts gate of every date it publishes
    assert gated == [
        (D1, "candidate", True),
        (D1, "dbt", True),
        (D1, "raw", True),
        (D2, "candidate", True),
        (D3, "candidate", True),
    ]
    assert checksums(warehouse.url, "marts") == before
    # fct_visits in the same publish: every visit of the week, in its latest version
    assert query(warehouse.url, "select count(*) from marts.fct_visits where visit_type = 'inspection'") == [
        (5,)
    ]


def test_republish_of_corrected_night_2_reaches_the_later_night(warehouse: Warehouse, tmp_path: Path) -> None:
    folder = warehouse.landing
    (folder / "dealer_sales" / D2.isoformat()).mkdir(parents=True, exist_ok=True)
    (folder / "crm" / D2.isoformat()).mkdir(parents=True, exist_ok=True)
    (folder / "dealer_sales" / D2.isoformat() / "orders.csv").write_bytes(
        CORRECTED_ORDERS.encode().replace(b"\n", b"\r\n")
    )
    (folder / "crm" / D2.isoformat() / "visits.csv").write_bytes(
        CORRECTED_VISITS.encode().replace(b"\n", b"\r\n")
    )
    assert load_date(warehouse.url, str(folder), D2, sources=["crm", "dealer_sales"]).ok

    result = republish(warehouse.url, D2, manifest_path(), log_dir=tmp_path / "logs")

    assert result.published, result.lines()
    assert result.publish is not None and result.publish.business_dates == [D2, D3]
    assert [g.business_date for g in result.gates] == [D2, D3]
    # V4 now counts: D0001, A0000001, A0000006, D0002 inspected; 4 of M001's 5 active partners
    assert week_rows(warehouse.url) == [
        ("M001", 5, 4, True, 4, Decimal("0.8000")),
        ("M002", 1, 1, False, 0, Decimal("0.0000")),
    ]
    # 11-08 as known now: O6 placed (1 x 5.00) joins O8 (7 x 5.00) in A0000006's 30 days …
    assert query(
        warehouse.url,
        "select order_lines_30d, revenue_30d from marts.fct_agent_activity where as_of_date = %s"
        " and agent_id = 'A0000006'",
        D3,
    ) == [(2, Decimal("40.00"))]
    # … and D0001 sold one SKU0002 in 28 days: 30 on hand is 840 days of supply
    assert query(
        warehouse.url,
        "select sellout_28d_qty, days_of_supply, health_band from marts.mart_dealer_inventory_health"
        " where snapshot_date = %s and partner_id = 'D0001' and sku = 'SKU0002'",
        D3,
    ) == [(1, Decimal("840.0"), "overstock")]
    lines = result.lines()
    assert len(lines) <= 10, lines
    assert lines[-1].startswith(f"  published {D2}, {D3} (publish ")
    assert (tmp_path / "logs" / "dbt.log").read_text().count(" START ") > 20  # dbt's log, not the console


def test_cli_republish_prints_a_short_summary(warehouse: Warehouse) -> None:
    env = {**os.environ, "QUDAO_WAREHOUSE_URL": warehouse.url, "QUDAO_HOME": str(warehouse.home)}
    qudao = Path(sys.executable).with_name("qudao")
    done = subprocess.run(
        [str(qudao), "republish", "--date", D3.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) <= 2, done.stderr  # no dbt log there either
    lines = done.stdout.splitlines()
    assert len(lines) <= 10, lines
    (log_line,) = [line for line in lines if line.startswith("  dbt log: ")]
    log = Path(log_line.removeprefix("  dbt log: "))
    assert log.parent.parent == warehouse.home / "logs"
    assert " START " in log.read_text()
    assert lines[-1].startswith(f"  published {D3} (publish ")


def test_every_published_mart_equals_a_full_refresh(warehouse: Warehouse) -> None:
    refresh = build(warehouse.url, D3, full_refresh=True)
    assert refresh.success, refresh.lines()
    published, rebuilt = checksums(warehouse.url, "marts"), checksums(warehouse.url, "marts_candidate")
    assert len(published) >= 18  # 5 dimensions, 6 facts, 7 marts
    assert published == rebuilt
