"""The columnar path loads exactly what the row path loads, and one entity delivered twice is refused."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

import qudao.ingest.columnar as columnar
import qudao.ingest.loader as loader
from qudao.contracts import entity
from qudao.ingest import load_date
from qudao_testing.extracts import day_rows, file_path, write_bytes, write_day, write_entity

pytestmark = pytest.mark.integration

D1 = date(2026, 11, 2)
ORDERS = entity("dealer_sales.orders")
PARTNERS = entity("crm.partners")

#: order lines covering what the masks accept, what they send the long way, and rejects
ORDER_LINES = [
    "O1,1,2026-11-02,D0001,A000001,SKU0001,1,1.25,placed,2026-11-02T16:00:00+08:00",
    "O2,1,2026-11-02,D0001,,SKU0002,007,12,shipped,2026-11-02T16:00:00",  # naive: Shanghai
    "O3,1,2026-11-02,D0002,A000003,SKU0001,3,0.5,placed,2026-11-02 16:00",
    "O4,1,2026-11-02,D0002,A000003,SKU0001,3,0.05,placed,2026-11-02T08:00:00Z",
    "O5,1,2026-11-02,D0002,A000003,SKU0001,3,99.99,returned,2026-11-02T03:30:00-05:30",
    "O6,1,2026-11-02,D0002,A000003,SKU0001,3,99.99,placed,2026-11-02T16:00:00.123456+0800",
    "",  # a blank line is no record
    "O7,1,1988-06-01,D0002,A000003,SKU0001,3,1.00,placed,1988-06-01T12:00:00",  # old naive: row path
    "O8,1,2026-11-02,D0002,A000003,SKU0001, 7 ,3.456,placed,2026-11-02T16:00:00+08",  # normalised
    "O9,1,2026-11-02,D0002,A000003,SKU0001,0,1.00,placed,2026-11-02T16:00:00+08",  # quantity > 0
    "O10,1,2026-11-02,D0002,A000003,NOPE,1,1.00,placed,2026-11-02T16:00:00+08",  # unknown sku
    "O11,1,2026-11-02,D0002,A000003,SKU0001,1,1.00,lost,2026-11-02T16:00:00+08",  # enum
    "O12,1,2026-11-02,D0002,A000003,SKU0001,1,1.00,placed",  # too few fields
    "O13,1,2026-11-02,D0002,A000003,SKU0001,1,1.00,placed,2026-11-02T16:00:00+08,x",  # too many
    "O14,1,2026-02-29,D0002,A000003,SKU0001,1,1.00,placed,2026-11-02T16:00:00+08",  # no such date
    "O15,1,2026-11-02,D0002,A000003,SKU0001,2147483648,1.00,placed,2026-11-02T16:00:00+08",
    "O16,1,2026-11-02,D0002,A000003,SKU0001,1,123456789012.34,placed,2026-11-02T16:00:00+08",
    "O17,1,2026-11-02,D0002,A000003,SKU0001,1,1234567890123,placed,2026-11-02T16:00:00+08",
    "O18,1,2026-11-02,D0002,A000003,SKU0001,1,1.00,placed,2026-11-02T16:00:00+16:00",
    ",1,2026-11-02,D0002,A000003,SKU0001,1,1.00,placed,2026-11-02T16:00:00+08",  # key missing
]


@pytest.fixture
def other_db_url(new_warehouse) -> Iterator[str]:
    """A second fresh warehouse, to load the same files by the other path."""
    with new_warehouse() as url:
        yield url


def _write_varied_day(landing) -> None:
    write_day(landing, D1, skip=["dealer_sales.orders", "crm.partners"])
    header = ",".join(ORDERS.column_names)
    write_bytes(file_path(landing, ORDERS, D1), ("\r\n".join([header, *ORDER_LINES]) + "\r\n").encode())
    partners = day_rows(D1, n=5)["crm.partners"]
    partners[0]["partner_name"] = "北京\t建材\\有限公司"  # a tab and a backslash, no quote needed
    agent = next(p for p in partners if p["tier"] == "2")
    partners += [
        {**agent, "partner_id": "A000077", "parent_partner_id": "A000078"},  # parent later in the file
        {**agent, "partner_id": "A000078", "parent_partner_id": partners[0]["partner_id"]},
        {**agent, "partner_id": "A000079", "parent_partner_id": "D0099"},  # parent unknown
    ]
    write_entity(landing, "crm.partners", D1, partners)


def _state(url: str) -> dict[str, list[tuple]]:
    """Every raw row (load ids left out) and every reject of the warehouse, ordered."""
    out: dict[str, list[tuple]] = {}
    with psycopg.connect(url) as conn:
        for e in (ORDERS, PARTNERS):
            cols = ", ".join([*e.column_names, "_line_number", "_business_date", "_extra"])
            out[e.name] = conn.execute(
                f"select {cols} from raw.{e.raw_table} order by _line_number"
            ).fetchall()
        out["rejects"] = conn.execute(
            "select entity, file_name, line_number, raw_text, reason from ops.rejected_rows"
            " order by entity, line_number"
        ).fetchall()
        out["manifest"] = conn.execute(
            "select entity, status, rows_in, rows_loaded, rows_rejected, lines_in, lines_blank"
            " from ops.load_manifest order by entity"
        ).fetchall()
    return out


def test_the_columnar_path_loads_and_rejects_exactly_what_the_row_path_does(
    db_url, other_db_url, tmp_path, monkeypatch
):
    _write_varied_day(tmp_path)
    fed: list[int] = []
    feed = columnar.ColumnarLoad.feed

    def counting(self, chunk):
        fed.append(chunk.first_line)
        return feed(self, chunk)

    monkeypatch.setattr(columnar.ColumnarLoad, "feed", counting)
    assert load_date(db_url, str(tmp_path), D1).ok
    assert fed  # the columnar path did the work
    monkeypatch.setattr(loader, "COLUMNAR", False)
    assert load_date(other_db_url, str(tmp_path), D1).ok

    by_columns, by_rows = _state(db_url), _state(other_db_url)
    assert by_columns == by_rows
    orders = {r[0]: r for r in by_columns["orders"]}
    assert sorted(orders) == sorted(["O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8", "O16"])
    assert orders["O2"][6] == 7 and str(orders["O2"][7]) == "12.00"
    assert orders["O1"][9] == orders["O2"][9]  # naive timestamps are Shanghai time
    assert str(orders["O8"][7]) == "3.46" and orders["O8"][6] == 7
    assert [r[2] for r in by_columns["rejects"] if r[0] == "orders"] == [
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        19,
        20,
        21,
    ]
    assert "北京\t建材\\有限公司" in {r[1] for r in by_columns["partners"]}
    assert [(r[2], r[4]) for r in by_columns["rejects"] if r[0] == "partners"] == [
        (14, "parent_partner_id: unknown crm.partners partner_id 'D0099'")
    ]


def test_a_chunk_encoded_in_several_calls_loads_every_row_once_as_the_row_path_does(
    db_url, other_db_url, tmp_path, monkeypatch
):
    """pgpq encodes a chunk's rows :data:`columnar.ENCODE_ROWS` at a time: slices of one batch,
    the rejects (every 1,000th row) filtered out first, must load each row once, unchanged."""
    from upath import UPath

    from qudao_testing.extracts import write_orders_csv

    rows = 3 * columnar.ENCODE_ROWS  # one chunk (2 MiB), three calls once the rejects are out
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    write_orders_csv(UPath(file_path(tmp_path, ORDERS, D1)), rows, D1, bad_every=1000)
    calls: list[int] = []
    encode = columnar.pgpq.ArrowToPostgresBinaryEncoder

    class Counting:
        def __init__(self, schema):
            self._inner = encode(schema)
            self._orders = "order_id" in schema.names

        def write_header(self):
            return self._inner.write_header()

        def write_batch(self, batch):
            if self._orders:
                calls.append(batch.num_rows)
            return self._inner.write_batch(batch)

        def finish(self):
            return self._inner.finish()

    monkeypatch.setattr(columnar.pgpq, "ArrowToPostgresBinaryEncoder", Counting)
    assert load_date(db_url, str(tmp_path), D1).ok
    monkeypatch.setattr(loader, "COLUMNAR", False)
    assert load_date(other_db_url, str(tmp_path), D1).ok

    by_columns, by_rows = _state(db_url), _state(other_db_url)
    rejected = rows // 1000
    assert calls == [columnar.ENCODE_ROWS, columnar.ENCODE_ROWS, columnar.ENCODE_ROWS - rejected]
    assert by_columns == by_rows
    lines = [r[-3] for r in by_columns["orders"]]
    assert len(lines) == len(set(lines)) == rows - rejected  # each row once
    reject_lines = [r[2] for r in by_columns["rejects"] if r[0] == "orders"]
    assert reject_lines == [1001 + 1000 * k for k in range(rejected)]  # the header is line 1


def test_a_copy_widens_its_connections_send_buffer(db_url) -> None:
    """The sender keeps the server busy while the main thread holds the GIL (docs/ingest.md)."""
    import os
    import socket

    from qudao.ingest.sink import COPY_SOCKET_BUFFER, CopySender

    granted = min(COPY_SOCKET_BUFFER, int(Path("/proc/sys/net/core/wmem_max").read_text()))
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < 2 * granted  # not already
            CopySender(cur)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * granted  # Linux doubles it
        assert conn.execute("select 1").fetchone() == (1,)  # libpq's socket is still open


def test_one_entity_delivered_in_two_formats_for_one_date_is_refused_not_loaded_twice(
    db_url, conn, tmp_path, caplog
):
    write_day(tmp_path, D1)
    rows = day_rows(D1, n=5)["dealer_sales.orders"]
    write_entity(tmp_path, "dealer_sales.orders", D1, rows, fmt="xlsx")
    assert file_path(tmp_path, ORDERS, D1).exists()

    with caplog.at_level(logging.ERROR, logger="qudao.ingest"):
        report = load_date(db_url, str(tmp_path), D1)

    assert not report.ok
    orders = [f for f in report.files if f.qualified == "dealer_sales.orders"]
    assert [(f.path.rsplit("/", 1)[-1], f.status, f.rows_loaded) for f in orders] == [
        ("orders.csv", "refused", 0),
        ("orders.xlsx", "refused", 0),
    ]
    assert all(
        "orders.csv and orders.xlsx both deliver dealer_sales.orders for 2026-11-02" in f.error
        for f in orders
    )
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone() == (0,)
    manifest = conn.execute(
        "select file_name, status, error from ops.load_manifest where entity = 'orders' order by file_name"
    ).fetchall()
    assert [(m[0], m[1]) for m in manifest] == [("orders.csv", "refused"), ("orders.xlsx", "refused")]
    assert all("both deliver dealer_sales.orders" in m[2] for m in manifest)
    assert sum("both deliver dealer_sales.orders" in r.getMessage() for r in caplog.records) == 2
    assert (tmp_path / "dealer_sales" / D1.isoformat() / "orders.xlsx").exists()  # left where it is
    others = [f for f in report.files if f.qualified != "dealer_sales.orders"]
    assert others and all(f.status == "loaded" for f in others)
