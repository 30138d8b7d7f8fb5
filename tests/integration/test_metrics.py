"""The semantic layer on the hand-made fixture nights: metric values equal the worked numbers.

The nights and their cast are in ``tests/fixtures/marts_numbers/README.md``; the
mart rows behind each number are worked out in ``test_marts_numbers.py``. Each test
also compares the metric with its mart row by row, so that a metric and its mart
cannot disagree silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import yaml

from qudao.cli import main
from qudao.config import settings
from qudao.metrics.engine import Metrics, MetricsError

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 11, 6), date(2026, 11, 7), date(2026, 11, 8)
WEEK = date(2026, 11, 2)
JIANGSU = "320000"


@pytest.fixture(scope="module")
def layer(published_nights: str) -> Iterator[Metrics]:
    yield Metrics(published_nights)


def r4(value: Any) -> Decimal | None:
    """A metric value rounded as the marts round rates (4 decimals)."""
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


def marts(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql, params).fetchall()


def test_metrics_are_listed_with_their_dimensions(layer: Metrics) -> None:
    infos = {m.name: m for m in layer.list()}
    for name in (
        "nominal_coverage_rate",
        "effective_coverage_rate",
        "active_agent_rate",
        "newly_active_agents",
        "lapsed_agents",
        "days_of_supply",
        "share_stockout",
        "share_no_movement",
        "share_low",
        "share_healthy",
        "share_overstock",
        "inspection_compliance_rate",
        "portfolio_inspected_rate",
        "callback_rate",
        "filings_pending_over_72h",
        "median_hours_to_approve",
    ):
        assert name in infos, name
    agents = infos["active_agent_rate"].dimensions
    for dim in ("region__province_name", "region__city_name", "partner__industry", "partner__tier"):
        assert dim in agents
    assert "region__province_name" in infos["effective_coverage_rate"].dimensions
    assert infos["callback_rate"].label == "回访率"


def test_coverage(layer: Metrics, published_nights: str) -> None:
    got = layer.query(
        ["nominal_coverage_rate", "effective_coverage_rate", "counties_covered_effective"],
        ["metric_time__day", "region__province_code"],
    ).rows
    mart = marts(
        published_nights,
        "select as_of_date, province_code, nominal_rate, effective_rate, covered_effective"
        " from marts.mart_channel_coverage_province order by as_of_date, province_code",
    )
    assert [(d, p, r4(n), r4(e), c) for d, p, n, e, c in got] == mart
    # Jiangsu on 11-08: 320104 and 320106 effectively covered, 320111 only nominally
    (targets,) = [
        t
        for d, p, t in marts(
            published_nights,
            "select as_of_date, province_code, target_counties from marts.mart_channel_coverage_province",
        )
        if d == D3 and p == JIANGSU
    ]
    week = layer.query(
        ["effective_coverage_rate", "target_counties"],
        ["metric_time__week", "region__province_code"],
        where=[f"{{{{ Dimension('region__province_code') }}}} = '{JIANGSU}'"],
    ).rows
    # a week's coverage is its last day's (a snapshot), not a sum of days
    assert [(w, p, r4(e), t) for w, p, e, t in week] == [
        (WEEK, JIANGSU, (Decimal(2) / targets).quantize(Decimal("0.0001")), targets)
    ]


def test_active_second_tier_agents(layer: Metrics, published_nights: str) -> None:
    got = layer.query(
        [
            "agents_signed",
            "active_agent_rate",
            "newly_active_agents",
            "lapsed_agents",
            "agents_never_ordered",
        ],
        ["metric_time__day", "dealer"],
    ).rows
    assert [(d, k, s, r4(a), n, lp, nv) for d, k, s, a, n, lp, nv in got] == [
        (D1, "D0001", 5, Decimal("0.6000"), 3, 0, 2),
        (D2, "D0001", 5, Decimal("0.4000"), 2, 0, 2),
        (D2, "D0002", 1, Decimal("1.0000"), 1, 0, 0),
        (D3, "D0001", 3, Decimal("0.3333"), 1, 0, 1),
        (D3, "D0002", 2, Decimal("1.0000"), 2, 0, 0),
    ]
    mart = marts(
        published_nights,
        """select as_of_date, dealer_id, agents_signed, active_rate, agents_newly_active, agents_lapsed,
                  agents_never_ordered
           from marts.mart_active_second_tier_agents where agents_signed > 0
           order by as_of_date, dealer_id""",
    )
    assert [(d, k, s, r4(a), n, lp, nv) for d, k, s, a, n, lp, nv in got] == mart
    # all dealers on the week: the snapshot of Sunday 11-08, 3 of 5 agents active
    (row,) = layer.query(["active_agent_rate", "agents_signed"], ["metric_time__week"]).rows
    assert (row[0], r4(row[1]), row[2]) == (WEEK, Decimal("0.6000"), 5)
    # the agent's partner version of the day: every fixture agent is tier 2
    tiers = layer.query(["agents_signed"], ["partner__tier"], start=D3, end=D3).rows
    assert tiers == [(2, 5)]


def test_inventory_health(layer: Metrics, published_nights: str) -> None:
    got = layer.query(
        ["days_of_supply", "inventory_items"], ["metric_time__day", "partner", "stock_item__sku"]
    )
    mart = marts(
        published_nights,
        "select snapshot_date, partner_id, sku, days_of_supply from marts.mart_dealer_inventory_health"
        " order by snapshot_date, partner_id, sku",
    )

    def r1(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v)).quantize(Decimal("0.1"))

    assert [(d, p, s, r1(v)) for d, p, s, v, _ in got.rows] == mart
    d3 = layer.query(
        ["days_of_supply"]
        + [f"share_{b}" for b in ("stockout", "no_movement", "low", "healthy", "overstock")],
        start=D3,
        end=D3,
    ).rows
    # on hand 4+30+50+0+10 = 94; sell-out 19+0+1+9+8 = 37 in 28 days: 94 / (37/28) = 71.1351
    # one (partner, sku) in each of the five bands
    assert [r4(v) for v in d3[0]] == [Decimal("71.1351")] + [Decimal("0.2000")] * 5
    bands = layer.query(["inventory_items"], ["stock_item__health_band"], start=D3, end=D3).rows
    assert sorted(bands) == [
        ("healthy", 1),
        ("low", 1),
        ("no_movement", 1),
        ("overstock", 1),
        ("stockout", 1),
    ]


def test_the_sellout_window_of_days_of_supply_is_dbts(layer: Metrics) -> None:
    project = yaml.safe_load((settings().dbt_project_dir / "dbt_project.yml").read_text())
    window = project["vars"]["sellout_window_days"]
    semantic = settings().dbt_project_dir / "models" / "marts" / "inventory" / "_inventory__semantic.yml"
    assert f"sellout_28d_qty / {window}.0" in semantic.read_text()
    assert window == 28


def test_visit_compliance(layer: Metrics) -> None:
    got = layer.query(
        ["partners_inspected", "inspections", "portfolio_inspected_rate"], ["metric_time__week", "manager"]
    ).rows
    assert [(w, m, p, i, r4(r)) for w, m, p, i, r in got] == [
        (WEEK, "M001", 3, 4, Decimal("0.6000")),
        (WEEK, "M002", 1, 1, Decimal("0.0000")),
    ]
    (row,) = layer.query(
        ["inspection_compliance_rate", "portfolio_inspected_rate"], ["metric_time__week"]
    ).rows
    # M001 compliant, M002 not; 3 of the 7 active portfolio partners inspected in 30 days
    assert (row[0], r4(row[1]), r4(row[2])) == (WEEK, Decimal("0.5000"), Decimal("0.4286"))


def test_callback_rate(layer: Metrics, published_nights: str) -> None:
    days = layer.query(["callback_rate", "partners_developed"], ["metric_time__day"]).rows
    mart = marts(
        published_nights,
        "select business_date, callback_rate, partners_developed from marts.mart_callback_compliance"
        " order by business_date",
    )
    assert [(d, r4(r), n) for d, r, n in days] == mart
    assert [r4(r) for _, r, _ in days] == [Decimal("0.2000"), Decimal("0.5000"), Decimal("0.0000")]
    (week,) = layer.query(["callback_rate"], ["metric_time__week"]).rows
    assert r4(week[1]) == (Decimal(2) / 11).quantize(Decimal("0.0001"))  # (1 + 1 + 0) / (5 + 2 + 4)


def test_filings(layer: Metrics, published_nights: str) -> None:
    pending = layer.query(
        ["filings_pending_over_72h", "filings_total"],
        ["metric_time__day", "funnel_row__province_code", "funnel_row__filing_type"],
    ).rows
    mart = marts(
        published_nights,
        "select business_date, province_code, filing_type, pending_over_72h, filings_total"
        " from marts.mart_channel_filing_funnel order by business_date, province_code, filing_type",
    )
    assert pending == mart
    (week,) = layer.query(["filings_pending_over_72h"], ["metric_time__week"]).rows
    assert week == (WEEK, 1)  # the backlog of Sunday, F2
    median = layer.query(["median_hours_to_approve"], ["metric_time__day"]).rows
    assert [(d, Decimal(str(v))) for d, v in median] == [(D2, Decimal("28.0")), (D3, Decimal("80.0"))]
    (week,) = layer.query(["median_hours_to_approve"], ["metric_time__week"]).rows
    assert Decimal(str(week[1])) == Decimal("54.0")  # median of 28 and 80


def test_bad_questions_are_clear(layer: Metrics) -> None:
    with pytest.raises(MetricsError, match=r"unknown metric 'callback_rat' .did you mean callback_rate"):
        layer.query(["callback_rat"])
    with pytest.raises(MetricsError, match="before"):
        layer.query(["callback_rate"], start=D3, end=D1)
    with pytest.raises(
        MetricsError, match=r"group-by-items .*: region__nowhere .did you mean.*metric_time__day"
    ):
        layer.query(["callback_rate"], ["region__nowhere"])


def test_cli(
    published_nights: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", published_nights)
    args = [
        "metrics",
        "query",
        "--metrics",
        "callback_rate,partners_developed",
        "--group-by",
        "metric_time__day",
    ]
    assert main([*args, "--start", "2026-11-07", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "metric_time__day,callback_rate,partners_developed",
        "2026-11-07,0.5,2",
        "2026-11-08,0,4",
    ]
    assert main(["metrics", "list"]) == 0
    assert "effective_coverage_rate" in capsys.readouterr().out
    assert main(["metrics", "query", "--metrics", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qudao metrics: ") and "nope" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["metrics", "query", "--metrics", "callback_rate", "--start", "2026-13-01"])
    assert exit_.value.code == 2
    assert "not a date" in capsys.readouterr().err
