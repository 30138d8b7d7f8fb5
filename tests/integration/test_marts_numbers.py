"""The channel marts on three hand-made nights, against numbers worked out by hand.

The extracts for Fri 2026-11-06, Sat 11-07 and Sun 11-08 (the end of ISO week
2026-11-02) are checked-in files under ``tests/fixtures/marts_numbers/``, laid out as a
landing zone; its README has the cast of partners and their stories, which the comments
below refer to. Each night's folders are copied into a temporary landing zone, loaded,
and built the way nights run: the first night alone (a first, full build), then the
next two as one incremental catch-up (``start_date`` = 11-07). A ``--full-refresh`` at
the end must give identical marts.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from qudao.config import settings
from qudao.ingest.loader import load_date
from qudao.ledger import dbt_state
from qudao.transform import DbtResult, build
from qudao.warehouse.connection import with_database
from qudao.warehouse.schema import ensure_schema

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 11, 6), date(2026, 11, 7), date(2026, 11, 8)
JIANGSU = "320000"
COUNTIES = ("320104", "320106", "320111")
MARTS = (
    "mart_channel_coverage",
    "mart_channel_coverage_province",
    "mart_active_second_tier_agents",
    "fct_agent_activity",
    "mart_dealer_inventory_health",
    "mart_visit_compliance",
    "mart_callback_compliance",
    "mart_channel_filing_funnel",
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marts_numbers"


# ------------------------------------------------------------------------ extracts
def _deliver(landing: Path, d: date) -> None:
    """Copy night ``d``'s folders from the fixtures into ``landing`` (loading may move files)."""
    folders = sorted(FIXTURES.glob(f"*/{d.isoformat()}"))
    assert len(folders) == 3, folders  # crm, call_center, dealer_sales
    for folder in folders:
        shutil.copytree(folder, landing / folder.parent.name / folder.name)


# ------------------------------------------------------------------- the warehouse
def _load(url: str, landing: Path, d: date) -> None:
    _deliver(landing, d)
    report = load_date(url, str(landing), d)
    assert report.ok, report


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as c:
        return {
            t: sorted(c.execute(f"select * from marts_candidate.{t}").fetchall(), key=repr) for t in MARTS
        }


@pytest.fixture(scope="module")
def built(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Nights 11-06 (first build), then 11-07..11-08 as one incremental run, then a full refresh."""
    name = f"qudao_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    with psycopg.connect(url) as c:
        ensure_schema(c)
    landing = tmp_path_factory.mktemp("landing")
    try:
        _load(url, landing, D1)
        first = build(url, D1)
        assert first.success, first.lines()
        first_nodes = _ran(first)
        _load(url, landing, D2)
        _load(url, landing, D3)
        nightly = build(url, D3, start_date=D2)
        assert nightly.success, nightly.lines()
        nightly_nodes = _ran(nightly)
        incremental = _snapshot(url)
        refresh = build(url, D3, full_refresh=True)
        assert refresh.success, refresh.lines()
        yield {
            "url": url,
            "incremental": incremental,
            "full_refresh": _snapshot(url),
            "first_nodes": first_nodes,
            "nightly_nodes": nightly_nodes,
        }
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [name])
            admin.execute(f'drop database if exists "{name}"')


def _ran(result: DbtResult) -> dict[str, str]:
    """unique_id -> compiled SQL of every node the dbt invocation ran."""
    return {n.unique_id: n.compiled_code for n in result.nodes}


def rows(built: dict[str, Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(built["url"]) as c:
        return c.execute(sql, params).fetchall()


# ------------------------------------------------------------------------- tests
def test_incremental_nights_equal_full_refresh(built: dict[str, Any]) -> None:
    assert built["incremental"] == built["full_refresh"]
    assert all(built["incremental"][t] for t in MARTS)


def test_a_night_tests_only_what_it_changed(built: dict[str, Any]) -> None:
    """The first build loads the seed and runs every test; the catch-up night 11-07..08
    reloads no seed, runs no unit test and no full-history test, and its tests on the
    incremental models read the rows of 11-07..08 only (dbt's where config, dbt_project.yml)."""
    first, nightly = built["first_nodes"], built["nightly_nodes"]
    assert "seed.qudao.ref_regions" in first
    assert any(n.startswith("unit_test.") for n in first)
    assert any(n.startswith("test.qudao.unique_stg_crm__partners_partner_id") for n in first)
    assert not any(n.startswith(("seed.", "unit_test.")) for n in nightly)
    assert not any(n.startswith("test.qudao.unique_stg_") for n in nightly)
    night = "between date '2026-11-07' and date '2026-11-08'"
    scoped = {
        "not_null_fct_order_lines_order_id": "last_delivered_date " + night,
        "unique_combination_mart_active_second_tier_agents_as_of_date__dealer_id": "as_of_date " + night,
        "unique_combination_int_partners__versions_partner_id__known_from_date": "known_from_date " + night,
    }
    for test, condition in scoped.items():
        (sql,) = [code for n, code in nightly.items() if n.startswith(f"test.qudao.{test}.")]
        assert condition in sql, sql
        (sql,) = [code for n, code in first.items() if n.startswith(f"test.qudao.{test}.")]
        assert "between date" not in sql, sql
    region = "test.qudao.unique_dim_region_region_code."
    (sql,) = [code for n, code in nightly.items() if n.startswith(region)]
    assert "between date" not in sql  # a table rebuilt whole every night is tested whole


def test_a_night_does_not_create_the_unchanged_views_again(built: dict[str, Any]) -> None:
    """The first build creates the views; the night after it (same project files, every view
    there: ops.dbt_state) builds the tables under them and leaves the views as they are."""
    first, nightly = built["first_nodes"], built["nightly_nodes"]
    views = (
        "model.qudao.stg_crm__partners",
        "model.qudao.base_crm__partners",
        "model.qudao.stg_ops__load_manifest",
    )
    assert all(v in first for v in views)
    assert not any(v in nightly for v in views)
    assert "model.qudao.stg_crm__partners_deliveries" in nightly
    with psycopg.connect(built["url"]) as c:
        recorded = dbt_state.view_relations(dbt_state.read_state(c))
        assert '"staging"."stg_crm__partners"' in recorded and len(recorded) == 18
        assert dbt_state.relations_exist(c, recorded)
        assert not dbt_state.relations_exist(c, [*recorded, '"staging"."no_such_view"'])
        assert not dbt_state.relations_exist(c, [])


def test_coverage(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select region_code, partners_signed, partners_selling_90d, is_covered_nominal,
                  is_covered_effective, coverage_change
           from marts_candidate.mart_channel_coverage
           where as_of_date = %s and region_code = any(%s) order by region_code""",
        D3,
        list(COUNTIES),
    )
    # 320104: D0001, A0000001, A0000002 (its 10-05 line is within 90 days) all sell.
    # 320106: D0002, A0000004, A0000006. 320111: A0000003 suspended (signed, never sells),
    # A0000005 terminated on 11-08. 30 days earlier nothing was known: gained.
    assert got == [
        ("320104", 3, 3, True, True, "gained"),
        ("320106", 3, 3, True, True, "gained"),
        ("320111", 1, 0, True, False, "unchanged"),
    ]
    # D0003's county is not a target: no row
    outside = "select 1 from marts_candidate.mart_channel_coverage where region_code = %s"
    assert rows(built, outside, "110101") == []

    with (settings().dbt_project_dir / "seeds" / "ref_regions.csv").open(encoding="utf-8") as f:
        targets = sum(r["province_code"] == JIANGSU and r["is_target"] == "true" for r in csv.DictReader(f))
    province = rows(
        built,
        """select target_counties, covered_nominal, covered_effective, nominal_rate, effective_rate
           from marts_candidate.mart_channel_coverage_province
           where as_of_date = %s and province_code = %s""",
        D3,
        JIANGSU,
    )
    q = Decimal("0.0001")
    assert province == [
        (targets, 3, 2, (Decimal(3) / targets).quantize(q), (Decimal(2) / targets).quantize(q))
    ]


def test_active_second_tier_agents(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select as_of_date, dealer_id, agents_signed, agents_active, active_rate, agents_newly_active,
                  agents_lapsed, agents_never_ordered
           from marts_candidate.mart_active_second_tier_agents order by as_of_date, dealer_id""",
    )
    assert got == [
        # 11-06: A1, A2 (line not yet cancelled), A5 active; A3, A6 never ordered
        (D1, "D0001", 5, 3, Decimal("0.6000"), 3, 0, 2),
        (D1, "D0002", 0, 0, None, 0, 0, 0),
        (D1, "D0003", 0, 0, None, 0, 0, 0),
        # 11-07: A2's line is cancelled and its late 10-05 line is outside the window (but it has ordered);
        # A6's only line was returned
        (D2, "D0001", 5, 2, Decimal("0.4000"), 2, 0, 2),
        (D2, "D0002", 1, 1, Decimal("1.0000"), 1, 0, 0),
        (D2, "D0003", 0, 0, None, 0, 0, 0),
        # 11-08: A5 terminated, A6 now under D0002
        (D3, "D0001", 3, 1, Decimal("0.3333"), 1, 0, 1),
        (D3, "D0002", 2, 2, Decimal("1.0000"), 2, 0, 0),
        (D3, "D0003", 0, 0, None, 0, 0, 0),
    ]
    detail = rows(
        built,
        """select agent_id, last_order_date, order_lines_30d, revenue_30d, is_active
           from marts_candidate.fct_agent_activity where as_of_date = %s order by agent_id""",
        D3,
    )
    assert detail == [
        ("A0000001", date(2026, 11, 6), 1, Decimal("50.00"), True),
        ("A0000002", date(2026, 10, 5), 0, Decimal("0.00"), False),
        ("A0000003", None, 0, Decimal("0.00"), False),
        ("A0000004", date(2026, 11, 7), 1, Decimal("15.00"), True),
        ("A0000006", date(2026, 11, 8), 1, Decimal("35.00"), True),
    ]


def test_inventory_health(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select partner_id, sku, on_hand_qty, sellout_28d_qty, avg_daily_sellout, days_of_supply,
                  health_band
           from marts_candidate.mart_dealer_inventory_health where snapshot_date = %s
           order by partner_id, sku""",
        D3,
    )
    assert got == [
        # O1 10 + O4 2 + O8 7 (O2 cancelled, O7 older than 28 days): 4 / (19/28) = 5.9 days
        ("D0001", "SKU0001", 4, 19, Decimal("0.6786"), Decimal("5.9"), "low"),
        ("D0001", "SKU0002", 30, 0, Decimal("0.0000"), None, "no_movement"),  # O6 was returned
        ("D0002", "SKU0001", 50, 1, Decimal("0.0357"), Decimal("1400.0"), "overstock"),
        ("D0002", "SKU0002", 0, 9, Decimal("0.3214"), Decimal("0.0"), "stockout"),
        ("D0003", "SKU0001", 10, 8, Decimal("0.2857"), Decimal("35.0"), "healthy"),
    ]


def test_visit_compliance(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select week_start, manager_id, inspections, partners_inspected, is_compliant, portfolio_partners,
                  portfolio_inspected_30d, portfolio_inspected_rate
           from marts_candidate.mart_visit_compliance order by week_start, manager_id""",
    )
    week = date(2026, 11, 2)
    assert got == [
        # V1, V3 (D0001 twice), V2, V5 (Sunday 23:30); the training visit does not count.
        # Portfolio: D0001, D0002, A0000001, A0000002, A0000006 (active, M001); 3 inspected.
        (week, "M001", 4, 3, True, 5, 3, Decimal("0.6000")),
        # A0000003 is suspended: inspected but not in the active portfolio (D0003, A0000004).
        (week, "M002", 1, 1, False, 2, 0, Decimal("0.0000")),
    ]


def test_callback_compliance(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select business_date, partners_developed, partners_called_back, callback_rate, is_compliant
           from marts_candidate.mart_callback_compliance order by business_date""",
    )
    assert got == [
        (D1, 5, 1, Decimal("0.2000"), True),  # D0001 A1 A2 D0002 A5; only A1 connected
        (D2, 2, 1, Decimal("0.5000"), True),  # A4 signed + bought, D0002 sold; D0002 called at 23:30
        (D3, 4, 0, Decimal("0.0000"), False),  # D0001 A6 D0003 D0002; C4 is A4 at 00:30, C5 a sales call
    ]


def test_filing_funnel(built: dict[str, Any]) -> None:
    got = rows(
        built,
        """select business_date, province_code, filing_type, filings_total, submitted, approved, rejected,
                  filed, pending_over_72h, median_hours_to_approve
           from marts_candidate.mart_channel_filing_funnel
           order by business_date, province_code, filing_type""",
    )
    assert got == [
        (D1, JIANGSU, "change", 1, 1, 0, 0, 0, 1, None),  # F2 submitted 11-02: pending
        (D1, JIANGSU, "termination", 1, 1, 0, 0, 0, 0, None),  # F3 submitted 11-05 09:00: 39 h
        (D1, "unknown", "new", 1, 1, 0, 0, 0, 0, None),  # A0000004 not known yet
        (D2, JIANGSU, "change", 1, 1, 0, 0, 0, 1, None),
        (D2, JIANGSU, "new", 1, 0, 1, 0, 0, 0, Decimal("28.0")),
        (D2, JIANGSU, "termination", 1, 1, 0, 0, 0, 0, None),  # 63 h by the end of 11-07
        (D3, "110000", "change", 1, 1, 0, 0, 0, 0, None),
        (D3, JIANGSU, "change", 1, 1, 0, 0, 0, 1, None),
        (D3, JIANGSU, "new", 1, 0, 0, 0, 1, 0, None),
        (D3, JIANGSU, "termination", 1, 0, 1, 0, 0, 0, Decimal("80.0")),  # approved 80 h after
    ]
