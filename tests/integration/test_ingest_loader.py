"""Ingestion happy paths against a real PostgreSQL: formats, encodings, idempotency, versions."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from upath import UPath

from qudao.contracts import entity
from qudao.ingest import load_date
from qudao.ingest.formats import xlsx_files
from qudao_testing.extracts import day_rows, file_path, write_bytes, write_day, write_entity

pytestmark = pytest.mark.integration

D1 = date(2026, 11, 2)
D2 = date(2026, 11, 3)
SH = timezone(timedelta(hours=8))

ORDER_COLS = (
    "order_id, order_line, order_date, seller_partner_id, buyer_partner_id, sku, quantity,"
    " unit_price, status, updated_at, _line_number, _extra"
)


def _manifest(conn: psycopg.Connection, **where: object) -> list[tuple]:
    cond = " and ".join(f"{k} = %s" for k in where) or "true"
    return conn.execute(
        "select entity, file_name, status, rows_in, rows_loaded, rows_rejected, superseded_at is null,"
        f" error from ops.load_manifest where {cond} order by load_id",
        tuple(where.values()),
    ).fetchall()


def _orders(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        f"select {ORDER_COLS} from raw.dealer_sales__orders order by order_id, order_line"
    ).fetchall()


def test_a_whole_day_loads_every_entity_with_typed_values(db_url, conn, tmp_path):
    written = write_day(tmp_path, D1, n=5)
    report = load_date(db_url, str(tmp_path), D1)

    assert report.ok and not report.over_threshold
    assert [f.qualified for f in report.files] == [
        "crm.channel_managers",
        "crm.products",
        "crm.partners",
        "crm.channel_filings",
        "crm.visits",
        "call_center.calls",
        "dealer_sales.orders",
        "dealer_sales.inventory",
    ]
    for f in report.files:
        n = len(written[f.qualified])
        assert (f.status, f.rows_in, f.rows_loaded, f.rows_rejected) == ("loaded", n, n, 0), f
        table = entity(f.qualified).raw_table
        assert conn.execute(f"select count(*) from raw.{table}").fetchone()[0] == n

    # typed values; a timestamp without offset is Asia/Shanghai
    row = conn.execute(
        "select order_line, order_date, quantity, unit_price, updated_at, _business_date, f.source_file,"
        " _line_number, f.file_sha256, _extra from raw.dealer_sales__orders"
        " join ops.raw_files f on f.load_id = _load_id where order_id = 'O00000003'"
    ).fetchone()
    assert row[:8] == (
        2,
        D1,
        3,
        Decimal("3.25"),
        datetime(2026, 11, 2, 16, 0, tzinfo=SH),
        D1,
        "dealer_sales/2026-11-02/orders.csv",
        4,
    )
    assert row[8] == report.files[6].sha256 and len(row[8]) == 64
    assert row[9] is None
    # a quoted multi-line note survives; the next record's line number counts physical lines
    visits = conn.execute(
        "select visit_id, notes, _line_number, visited_at from raw.crm__visits order by visit_id"
    ).fetchall()
    assert visits[0][1] == "库存正常\n陈列需改进" and visits[0][2] == 2
    assert visits[1][2] == 4
    assert visits[0][3] == datetime(2026, 11, 2, 14, 0, tzinfo=SH)
    # JSON Lines: nulls stay null, ints typed
    calls = conn.execute(
        "select call_id, satisfaction, duration_seconds, _extra from raw.call_center__calls order by call_id"
    ).fetchall()
    assert calls[:2] == [("C0000001", 5, 300, None), ("C0000002", None, 300, None)]
    manifest = _manifest(conn, business_date=D1)
    assert all(m[2] == "loaded" and m[3] == m[4] for m in manifest)
    assert conn.execute("select count(*) from ops.rejected_rows").fetchone()[0] == 0


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_bom_and_gb18030_csv_load_the_same_rows_as_utf8(db_url, conn, tmp_path, encoding):
    rows = day_rows(D1)
    write_entity(tmp_path / "a", "crm.partners", D1, rows["crm.partners"])
    write_entity(tmp_path / "b", "crm.partners", D1, rows["crm.partners"], encoding=encoding)
    cols = "partner_id, partner_name, tier, parent_partner_id, industry, contact_phone, updated_at"
    got = []
    for sub in ("a", "b"):
        report = load_date(db_url, str(tmp_path / sub), D1, sources=["crm"])
        assert [(f.status, f.rows_loaded) for f in report.files] == [("loaded", 10)]
        got.append(
            conn.execute(
                f"select {cols} from raw.crm__partners join ops.raw_files f on f.load_id = _load_id"
                " where f.source_file like %s and _load_id = %s order by partner_id",
                ("crm/%", report.files[0].load_id),
            ).fetchall()
        )
        assert report.files[0].encoding == {"a": "utf-8", "b": encoding}[sub]
    assert got[0] == got[1]
    assert dict((r[0], r[1]) for r in got[1])["D0001"] == "北京建材1有限公司"


@pytest.mark.parametrize("in_memory_bytes", [64 << 20, 0], ids=["read-whole", "streamed"])
def test_xlsx_orders_load_the_same_rows_as_csv(db_url, conn, tmp_path, monkeypatch, in_memory_bytes):
    # read whole with calamine, or streamed with openpyxl as a large workbook is
    monkeypatch.setattr(xlsx_files, "IN_MEMORY_BYTES", in_memory_bytes)
    rows = day_rows(D1)
    write_day(tmp_path / "csv", D1)
    write_day(tmp_path / "xlsx", D1, skip=["dealer_sales.orders"])
    write_entity(tmp_path / "xlsx", "dealer_sales.orders", D1, rows["dealer_sales.orders"], fmt="xlsx")

    load_date(db_url, str(tmp_path / "csv"), D1)
    from_csv = _orders(conn)
    conn.execute("truncate raw.dealer_sales__orders")
    report = load_date(db_url, str(tmp_path / "xlsx"), D1, sources=["dealer_sales"])
    orders = next(f for f in report.files if f.entity == "orders")
    assert orders.path.endswith("orders.xlsx") and (orders.status, orders.rows_loaded) == ("loaded", 5)
    assert _orders(conn) == from_csv


def test_gzip_json_lines_load_like_plain(db_url, conn, tmp_path):
    rows = day_rows(D1)["call_center.calls"]
    write_entity(tmp_path, "call_center.calls", D1, rows, fmt="jsonl.gz")
    report = load_date(db_url, str(tmp_path), D1, sources=["call_center"])
    assert [(f.status, f.rows_in, f.rows_loaded, f.encoding) for f in report.files] == [
        ("loaded", 5, 5, "utf-8+gzip")
    ]
    got = conn.execute(
        "select call_id, started_at, satisfaction from raw.call_center__calls order by call_id"
    ).fetchall()
    assert got[0] == ("C0000001", datetime(2026, 11, 2, 11, 0, tzinfo=SH), 5)


def test_header_case_spaces_and_column_order_are_free(db_url, conn, tmp_path):
    rows = day_rows(D1)
    write_day(tmp_path / "plain", D1)
    write_day(tmp_path / "odd", D1, skip=["dealer_sales.orders"])
    cols = list(entity("dealer_sales.orders").column_names)
    odd_header = [f"  {c.upper()} " if i % 2 else c.title() for i, c in enumerate(reversed(cols))]
    write_entity(tmp_path / "odd", "dealer_sales.orders", D1, rows["dealer_sales.orders"], header=odd_header)

    load_date(db_url, str(tmp_path / "plain"), D1)
    plain = _orders(conn)
    conn.execute("truncate raw.dealer_sales__orders")
    report = load_date(db_url, str(tmp_path / "odd"), D1, sources=["dealer_sales"])
    assert report.ok and report.files[0].drift == []
    assert _orders(conn) == plain


def test_rerunning_a_date_replaces_that_files_rows(db_url, conn, tmp_path):
    write_day(tmp_path, D1)
    load_date(db_url, str(tmp_path), D1)
    snapshot = conn.execute(
        "select partner_id, partner_name, _line_number from raw.crm__partners order by partner_id"
    ).fetchall()
    orders = _orders(conn)

    # the same date again, with the same files: identical raw contents, no duplicates
    second = load_date(db_url, str(tmp_path), D1)
    assert {f.status for f in second.files} == {"skipped_duplicate"}
    assert _orders(conn) == orders
    assert (
        conn.execute(
            "select partner_id, partner_name, _line_number from raw.crm__partners order by partner_id"
        ).fetchall()
        == snapshot
    )

    # a corrected orders.csv for the same date replaces the earlier load of that file
    rows = day_rows(D1)["dealer_sales.orders"][:3]
    rows[0] = {**rows[0], "quantity": "99"}
    write_entity(tmp_path, "dealer_sales.orders", D1, rows)
    third = load_date(db_url, str(tmp_path), D1, sources=["dealer_sales"])
    assert [(f.entity, f.status, f.rows_loaded) for f in third.files] == [
        ("orders", "loaded", 3),
        ("inventory", "skipped_duplicate", 0),
    ]
    got = _orders(conn)
    assert [(r[0], r[6]) for r in got] == [("O00000001", 99), ("O00000002", 2), ("O00000003", 3)]
    current = conn.execute(
        "select count(*) from ops.load_manifest_current where entity = 'orders' and status = 'loaded'"
    ).fetchone()[0]
    assert current == 1

    # the original delivery again: it replaces the correction, and raw is as after the first load
    write_entity(tmp_path, "dealer_sales.orders", D1, day_rows(D1)["dealer_sales.orders"])
    fourth = load_date(db_url, str(tmp_path), D1, sources=["dealer_sales"])
    assert (fourth.files[0].status, fourth.files[0].rows_loaded) == ("loaded", 5)
    assert _orders(conn) == orders


def test_same_bytes_delivered_again_are_skipped_and_logged(db_url, conn, tmp_path, caplog):
    rows = day_rows(D1)
    write_day(tmp_path, D1)
    first = load_date(db_url, str(tmp_path), D1)
    orders_first = next(f for f in first.files if f.entity == "orders")
    # the same orders bytes delivered again in the next day's folder
    write_day(tmp_path, D2, skip=["dealer_sales.orders"])
    write_entity(tmp_path, "dealer_sales.orders", D2, rows["dealer_sales.orders"])
    assert (
        file_path(tmp_path, entity("dealer_sales.orders"), D2).read_bytes()
        == file_path(tmp_path, entity("dealer_sales.orders"), D1).read_bytes()
    )

    with caplog.at_level("INFO", logger="qudao.ingest"):
        second = load_date(db_url, str(tmp_path), D2)
    orders = next(f for f in second.files if f.entity == "orders")
    assert (orders.status, orders.rows_in, orders.rows_loaded) == ("skipped_duplicate", 0, 0)
    assert second.ok
    assert any("skipped" in r.message and "orders.csv" in r.message for r in caplog.records)
    row = conn.execute(
        "select status, duplicate_of, sha256, size_bytes, rows_in, error from ops.load_manifest"
        " where business_date = %s and entity = 'orders'",
        (D2,),
    ).fetchone()
    size = file_path(tmp_path, entity("dealer_sales.orders"), D2).stat().st_size
    assert row[:5] == ("skipped_duplicate", orders_first.load_id, orders_first.sha256, size, None)
    assert row[5] == f"same bytes as load {orders_first.load_id} (2026-11-02)"
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 5
    # a snapshot repeating yesterday's bytes is still today's snapshot
    partners = next(f for f in second.files if f.entity == "partners")
    assert (partners.status, partners.rows_loaded) == ("loaded", 10)
    assert conn.execute(
        "select _business_date, count(*) from raw.crm__partners group by 1 order by 1"
    ).fetchall() == [(D1, 10), (D2, 10)]


def test_newer_updated_at_is_kept_as_a_version(db_url, conn, tmp_path):
    rows = day_rows(D1)
    write_day(tmp_path, D1)
    load_date(db_url, str(tmp_path), D1)
    resent = {
        **rows["dealer_sales.orders"][0],
        "status": "shipped",
        "updated_at": "2026-11-03T09:00:00+08:00",
    }
    write_day(tmp_path, D2, skip=["dealer_sales.orders"])
    write_entity(tmp_path, "dealer_sales.orders", D2, [resent])
    report = load_date(db_url, str(tmp_path), D2)
    assert report.ok
    versions = conn.execute(
        "select status, updated_at, _business_date from raw.dealer_sales__orders"
        " where order_id = 'O00000001' order by updated_at"
    ).fetchall()
    assert versions == [
        ("placed", datetime(2026, 11, 2, 16, 0, tzinfo=SH), D1),
        ("shipped", datetime(2026, 11, 3, 9, 0, tzinfo=SH), D2),
    ]


def test_fsspec_memory_landing_zone(db_url, conn):
    landing = UPath("memory:///qudao-test-landing")
    try:
        write_day(landing, D1, n=3)
        report = load_date(db_url, "memory:///qudao-test-landing", D1)
        assert report.ok
        assert [f.rows_loaded for f in report.files] == [3, 3, 6, 3, 3, 3, 3, 3]
        src = conn.execute(
            "select distinct f.source_file from raw.crm__visits join ops.raw_files f on f.load_id = _load_id"
        ).fetchall()
        assert src == [("crm/2026-11-02/visits.csv",)]
        # a refused file moves to the quarantine of the same file system
        write_bytes(file_path(landing, entity("dealer_sales.orders"), D2, "xlsx"), b"PK\x03\x04 broken")
        f = load_date(db_url, "memory:///qudao-test-landing", D2, sources=["dealer_sales"]).files[0]
        assert f.status == "refused" and "not an XLSX workbook" in f.error
        assert f.quarantined_to.startswith("memory://")
        assert f.quarantined_to.endswith("qudao-test-landing/_quarantine/dealer_sales/2026-11-03/orders.xlsx")
        assert (landing / "_quarantine" / "dealer_sales" / "2026-11-03" / "orders.xlsx").exists()
        assert not file_path(landing, entity("dealer_sales.orders"), D2, "xlsx").exists()
    finally:
        landing.fs.rm(landing.path, recursive=True)


def test_quoted_and_unquoted_csv_give_the_same_rows_and_rejects(db_url, conn, tmp_path):
    cols = entity("dealer_sales.orders").column_names
    rows = day_rows(D1)["dealer_sales.orders"]
    rows[1] = {**rows[1], "quantity": "-2"}
    rows[3] = {**rows[3], "status": "Placed"}
    plain = "\r\n".join([",".join(cols), *(",".join(r[c] for c in cols) for r in rows)]) + "\r\n"
    quoted = re.sub(r",(SKU[0-9]+),", r',"\1",', plain)
    assert quoted.count('"') == 10
    got = []
    for sub, text in (("plain", plain), ("quoted", quoted)):
        write_day(tmp_path / sub, D1, skip=["dealer_sales.orders"])
        path = file_path(tmp_path / sub, entity("dealer_sales.orders"), D1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        conn.execute("truncate raw.dealer_sales__orders")
        f = next(x for x in load_date(db_url, str(tmp_path / sub), D1).files if x.entity == "orders")
        assert (f.rows_in, f.rows_loaded, f.rows_rejected) == (5, 3, 2)
        rejects = conn.execute(
            "select line_number, reason from ops.rejected_rows where load_id = %s order by 1", (f.load_id,)
        ).fetchall()
        got.append((_orders(conn), rejects))
    assert got[0] == got[1]
    assert got[0][1] == [
        (3, "quantity: must be > 0 (got '-2')"),
        (5, "status: 'Placed' not one of placed, shipped, cancelled, returned"),
    ]


def test_empty_deliveries_load_as_zero_rows(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["crm.channel_filings", "call_center.calls"])
    write_entity(tmp_path, "crm.channel_filings", D1, [])  # header only
    (tmp_path / "call_center" / D1.isoformat()).mkdir(parents=True)
    (tmp_path / "call_center" / D1.isoformat() / "calls.jsonl").write_bytes(b"")
    report = load_date(db_url, str(tmp_path), D1)
    got = {f.entity: (f.status, f.rows_in, f.rows_loaded) for f in report.files}
    assert got["channel_filings"] == ("loaded", 0, 0) and got["calls"] == ("loaded", 0, 0)
    assert report.ok and not report.over_threshold
