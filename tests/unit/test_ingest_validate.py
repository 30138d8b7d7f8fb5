"""Row checks without a database: the fast path never accepts what the slow path refuses."""

from __future__ import annotations

import pytest

from qudao.contracts import ENTITIES, entity
from qudao.ingest.validate import RowError, RowPlan, copy_escape, storable

SAMPLES = {
    "text": [
        "",
        "x",
        " D0001 ",
        "D0001",
        "A000123",
        "110105",
        "11010",
        "active",
        "lost",
        "a\tb",
        "a\\b",
        "中文",
        "\x00",
    ],
    "int": ["", "0", "1", "2", "5", "6", "007", "-1", "+3", " 4 ", "1.0", "abc", "99999999999", "2147483647"],
    "numeric": ["", "0", "1.25", "3.456", "-0.01", ".5", "1e3", "NaN", "1234567890123", "999999999999.99"],
    "date": [
        "",
        "2026-11-02",
        "2024-02-29",
        "2026-02-29",
        "2026-02-30",
        "2026-13-01",
        "26-11-02",
        "0999-01-01",
    ],
    "timestamptz": [
        "",
        "2026-11-02T16:00:00",
        "2026-11-02 16:00",
        "2026-11-02T16:00:00+08:00",
        "2026-11-02T16:00:00.123456Z",
        "2026-11-02T16:00:00+0800",
        "2026-11-02T25:00:00",
        "2026-11-02",
        "yesterday",
    ],
}


@pytest.mark.parametrize("e", ENTITIES, ids=lambda e: e.qualified)
def test_fast_path_accepts_only_what_the_slow_path_accepts_unchanged(e):
    plan = RowPlan(e, list(e.column_names))
    good = plan.convert(_valid_row(e))
    for i, col in enumerate(plan.columns):
        for value in SAMPLES[col.type]:
            fields = list(good)
            fields[i] = value
            fast = plan.fast("\t".join(fields)) is not None
            try:
                slow = plan.convert(fields)
            except RowError:
                slow = None
            if fast:
                assert slow is not None, (col.name, value)
                # PostgreSQL reads the verbatim value the way the slow path writes it
                if col.type in ("text", "date"):
                    assert slow[i] == value, (col.name, value)


def _valid_row(e) -> list[str]:
    from datetime import date

    from qudao_testing.extracts import day_rows

    row = day_rows(date(2026, 11, 2))[e.qualified][0]
    return [str(row[c]) if row[c] is not None else "" for c in e.column_names]


def test_slow_path_names_every_fault_of_a_row():
    e = entity("dealer_sales.orders")
    plan = RowPlan(e, list(e.column_names))
    row = ["", "0", "2026-02-30", "D1", "", "S", "-2", "x", "lost", "2026-11-02T16:00:00"]
    with pytest.raises(RowError) as err:
        plan.convert(row)
    assert str(err.value) == (
        "order_id: required value missing; order_line: must be >= 1 (got '0'); "
        "order_date: not a valid date ('2026-02-30'); quantity: must be > 0 (got '-2'); "
        "unit_price: not a number ('x'); status: 'lost' not one of placed, shipped, cancelled, returned"
    )


def test_slow_path_normalises_values():
    e = entity("dealer_sales.orders")
    plan = RowPlan(e, list(e.column_names))
    row = ["O\t1", " 2 ", "2026-11-02", "D1", "", "S", "+3", "3.455", "placed", "2026-11-02 16:00"]
    assert plan.convert(row) == [
        "O\\t1",
        "2",
        "2026-11-02",
        "D1",
        "",
        "S",
        "3",
        "3.46",
        "placed",
        "2026-11-02T16:00:00+08:00",
    ]


def test_plan_projects_free_column_order_and_extras():
    e = entity("dealer_sales.inventory")
    header = ["sku", "note", "snapshot_date", "on_hand_qty", "partner_id"]
    plan = RowPlan(e, header)
    assert plan.column_names == ["sku", "snapshot_date", "on_hand_qty", "partner_id"]
    assert plan.field_index == [0, 2, 3, 4]
    assert plan.extra == [(1, "note")]
    assert plan.projected and plan.position("partner_id") == 3 and plan.position("in_transit_qty") is None


def test_copy_escape_and_storable():
    assert copy_escape("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert storable({"k": ["x", 1, None]}) and not storable({"k": ["x\x00"]}) and not storable("\ud800")
    assert not storable({"\x00": 1}) and not storable([float("nan")]) and storable(1.5)


def test_every_sample_type_is_covered():
    types = {c.type for e in ENTITIES for c in e.columns}
    assert types <= set(SAMPLES)
