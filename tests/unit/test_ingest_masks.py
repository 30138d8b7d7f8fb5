"""The columnar masks without a database: they take only values the row path takes, with the same meaning."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from qudao.constants import SHANGHAI
from qudao.contracts import Column, entity
from qudao.ingest.columnar import _cast, column_mask
from qudao.ingest.validate import RowError, _converter

VALUES = [
    "",
    "0",
    "1",
    "007",
    " 7 ",
    "-4",
    "2147483647",
    "2147483648",
    "1.25",
    "3.456",
    "12",
    ".5",
    "123456789012.34",
    "1234567890123",
    "2026-11-02",
    "2026-02-29",
    "2024-02-29",
    "2026-11-02T16:00:00",
    "2026-11-02 16:00",
    "2026-11-02T16:00:00+08:00",
    "2026-11-02T08:00:00Z",
    "2026-11-02T16:00:00.123456+0800",
    "2026-11-02T16:00:00+16:00",
    "1988-06-01T12:00:00",
    "placed",
    "lost",
    "D0001",
    "d0001",
    "北京\t建材\\公司",
    "1",
    "2",
    "3",
]

COLUMNS = [
    (e.qualified, c) for e in (entity("dealer_sales.orders"), entity("crm.partners")) for c in e.columns
]


@pytest.mark.parametrize(("qualified", "col"), COLUMNS, ids=[f"{q}.{c.name}" for q, c in COLUMNS])
def test_a_value_the_mask_takes_is_one_the_row_path_takes_with_the_same_meaning(qualified: str, col: Column):
    e = entity(qualified)
    required = col.required or col.name in e.key
    mask = column_mask(col, required)(pa.array(VALUES, pa.string())).to_pylist()
    taken = [v for v, ok in zip(VALUES, mask, strict=True) if ok]
    convert = _converter(col, required, col.name in e.key)
    cast = _cast(col)
    for v in taken:
        try:
            text = convert(v)
        except RowError as exc:  # pragma: no cover - the assertion names the value
            raise AssertionError(f"mask took {v!r}, the row path refuses it: {exc}") from exc
        if v == "":
            continue
        got = cast(pa.array([v], pa.string())).to_pylist()[0]
        if col.type == "int":
            assert got == int(text)
        elif col.type == "numeric":
            assert got == Decimal(text)
        elif col.type == "date":
            assert got.isoformat() == text
        elif col.type == "timestamptz":
            expected = datetime.fromisoformat(v)
            expected = expected if expected.tzinfo else expected.replace(tzinfo=SHANGHAI)
            assert got == expected
        else:
            assert got == v  # text is stored as delivered (binary COPY needs no escaping)


def test_the_masks_send_what_needs_normalising_or_naming_the_long_way():
    orders = entity("dealer_sales.orders")
    quantity = column_mask(orders.column("quantity"), True)(pa.array(["1", " 7 ", "0", "abc"])).to_pylist()
    price = column_mask(orders.column("unit_price"), True)(pa.array(["1.25", "3.456", "-1.00"])).to_pylist()
    updated = column_mask(orders.column("updated_at"), True)(
        pa.array(["2026-11-02T16:00:00", "1988-06-01T12:00:00", "1988-06-01T12:00:00+08:00", "yesterday"])
    ).to_pylist()
    assert quantity == [True, False, False, False]
    assert price == [True, False, False]
    assert updated == [True, False, True, False]
