"""Every row of "What bad input gets" (docs/contracts/extracts.md), checked on a real PostgreSQL."""

from __future__ import annotations

import gzip
import json
from datetime import date

import psycopg
import pytest

from qudao.contracts import entity
from qudao.ingest import load_date, missing_entities
from qudao_testing.extracts import csv_bytes, day_rows, file_path, write_bytes, write_day, write_entity

pytestmark = pytest.mark.integration

D1 = date(2026, 11, 2)
ORDERS = entity("dealer_sales.orders")


def _assert_reconciled(conn: psycopg.Connection) -> None:
    """rows in = rows in raw + rows in ops.rejected_rows, for every loaded file."""
    loads = conn.execute(
        "select load_id, source, entity, rows_in, rows_loaded, rows_rejected from ops.load_manifest_current"
        " where status = 'loaded'"
    ).fetchall()
    assert loads
    for load_id, source, ent, rows_in, loaded, rejected in loads:
        in_raw = conn.execute(
            f"select count(*) from raw.{source}__{ent} where _load_id = %s", (load_id,)
        ).fetchone()[0]
        in_rejects = conn.execute(
            "select count(*) from ops.rejected_rows where load_id = %s", (load_id,)
        ).fetchone()[0]
        assert (in_raw, in_rejects) == (loaded, rejected)
        assert rows_in == loaded + rejected


def _rejects(conn: psycopg.Connection, ent: str) -> list[tuple]:
    return conn.execute(
        "select file_name, line_number, raw_text, reason from ops.rejected_rows where entity = %s"
        " order by line_number",
        (ent,),
    ).fetchall()


def _by_entity(report) -> dict:
    return {f.entity: f for f in report.files}


# ----------------------------------------------------------------------------- unreadable files
def _latin1_orders() -> bytes:
    rows = day_rows(D1)["dealer_sales.orders"]
    rows[1] = {**rows[1], "order_id": "Ocafé,x"}  # é then a comma: no valid GB18030 sequence
    return csv_bytes(ORDERS.column_names, ([r[c] for c in ORDERS.column_names] for r in rows), "latin-1")


UNREADABLE = {  # case: (entity, file name, bytes, what the error must say)
    "utf16": (
        "dealer_sales.orders",
        "orders.csv",
        lambda: csv_bytes(["order_id"], [["O1"]], "utf-16"),
        "encoding is UTF-16, none of UTF-8, UTF-8 with BOM, GB18030",
    ),
    "latin1": (
        "dealer_sales.orders",
        "orders.csv",
        _latin1_orders,
        "encoding is none of UTF-8, UTF-8 with BOM, GB18030",
    ),
    "png_named_csv": (
        "dealer_sales.orders",
        "orders.csv",
        lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "NUL bytes",
    ),
    "csv_named_xlsx": (
        "dealer_sales.orders",
        "orders.xlsx",
        lambda: b"order_id,sku\nO1,SKU0001\n",
        "not an XLSX workbook",
    ),
    "truncated_gzip": (
        "call_center.calls",
        "calls.jsonl.gz",
        lambda: gzip.compress(
            b"".join(json.dumps(r).encode() + b"\n" for r in day_rows(D1, n=400)["call_center.calls"]),
            mtime=0,
        )[:-200],
        "broken or truncated gzip",
    ),
    "html_error_page": (
        "dealer_sales.inventory",
        "inventory.csv",
        lambda: b"<html><body>502 Bad Gateway</body></html>\n",
        "not a dealer_sales.inventory file (no contract column in the header)",
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_file_is_refused_quarantined_and_the_rest_loads(db_url, conn, tmp_path, case):
    qualified, name, make, cause = UNREADABLE[case]
    write_day(tmp_path, D1, skip=[qualified])
    e = entity(qualified)
    bad = write_bytes(tmp_path / e.source / D1.isoformat() / name, make())

    report = load_date(db_url, str(tmp_path), D1)

    assert not report.ok
    refused = [f for f in report.files if f.status == "refused"]
    assert [f.entity for f in refused] == [e.name]
    f = refused[0]
    assert f.error.startswith(f"{name}: unreadable") and cause in f.error, f.error
    assert (f.rows_in, f.rows_loaded, f.rows_rejected) == (0, 0, 0)
    target = tmp_path / "_quarantine" / e.source / D1.isoformat() / name
    assert f.quarantined_to == str(target) and target.read_bytes() == make()
    assert not bad.exists()
    # nothing of it in raw; every other file loaded
    assert conn.execute(f"select count(*) from raw.{e.raw_table}").fetchone()[0] == 0
    assert sorted(x.status for x in report.files if x is not f) == ["loaded"] * 7
    row = conn.execute(
        "select status, error, quarantined_to, sha256 <> '' from ops.load_manifest where entity = %s",
        (e.name,),
    ).fetchone()
    assert row == ("refused", f.error, str(target), True)
    assert missing_entities(str(tmp_path), D1) == [qualified]
    _assert_reconciled(conn)


def test_a_second_refusal_of_the_same_name_keeps_both_in_quarantine(db_url, conn, tmp_path):
    write_day(tmp_path, D1)
    path = file_path(tmp_path, ORDERS, D1)
    for attempt in (b"first", b"second"):
        write_bytes(path, b"\xff\xfe" + attempt)
        report = load_date(db_url, str(tmp_path), D1, sources=["dealer_sales"])
        assert _by_entity(report)["orders"].status == "refused"
    kept = sorted(
        p.read_bytes() for p in (tmp_path / "_quarantine" / "dealer_sales" / "2026-11-02").iterdir()
    )
    assert kept == [b"\xff\xfefirst", b"\xff\xfesecond"]

    # the corrected delivery loads and supersedes the refused manifest rows
    write_entity(tmp_path, "dealer_sales.orders", D1, day_rows(D1)["dealer_sales.orders"])
    report = load_date(db_url, str(tmp_path), D1, sources=["dealer_sales"])
    assert _by_entity(report)["orders"].status == "loaded"
    current = conn.execute("select status from ops.load_manifest_current where entity = 'orders'").fetchall()
    assert current == [("loaded",)]


# ----------------------------------------------------------------------------- missing columns
def test_missing_required_columns_refuse_the_file_naming_them(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    header = [c for c in ORDERS.column_names if c not in ("sku", "quantity")]
    write_entity(tmp_path, "dealer_sales.orders", D1, day_rows(D1)["dealer_sales.orders"], header=header)
    report = load_date(db_url, str(tmp_path), D1)
    f = _by_entity(report)["orders"]
    assert f.status == "refused"
    assert f.error == "orders.csv: required columns missing: sku, quantity"
    assert (tmp_path / "_quarantine" / "dealer_sales" / "2026-11-02" / "orders.csv").exists()
    assert _by_entity(report)["inventory"].status == "loaded"
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 0


def test_json_lines_missing_a_required_field_everywhere_is_refused(db_url, conn, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "outcome"} for r in day_rows(D1)["call_center.calls"]]
    write_entity(tmp_path, "call_center.calls", D1, rows, header=[k for k in rows[0]])
    report = load_date(db_url, str(tmp_path), D1, sources=["call_center"])
    f = report.files[0]
    assert (f.status, f.error) == ("refused", "calls.jsonl: required columns missing: outcome")
    assert conn.execute("select count(*) from raw.call_center__calls").fetchone()[0] == 0


def test_missing_optional_column_loads_as_null_and_is_recorded(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    header = [c for c in ORDERS.column_names if c != "buyer_partner_id"]
    write_entity(tmp_path, "dealer_sales.orders", D1, day_rows(D1)["dealer_sales.orders"], header=header)
    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]
    assert (f.status, f.rows_loaded, f.drift) == ("loaded", 5, ["-buyer_partner_id"])
    assert conn.execute(
        "select count(*), count(buyer_partner_id) from raw.dealer_sales__orders"
    ).fetchone() == (5, 0)
    assert conn.execute("select column_name, kind from ops.schema_drift").fetchall() == [
        ("buyer_partner_id", "missing_column")
    ]


# ----------------------------------------------------------------------------- extra columns
def test_extra_csv_column_goes_to_extra_and_schema_drift(db_url, conn, tmp_path):
    rows = [
        {**r, "channel": f"线上{i}", "remark ": ""} for i, r in enumerate(day_rows(D1)["dealer_sales.orders"])
    ]
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    header = ["Channel", *ORDERS.column_names, "remark "]
    write_entity(tmp_path, "dealer_sales.orders", D1, rows, header=header)
    report = load_date(db_url, str(tmp_path), D1)
    f = _by_entity(report)["orders"]
    assert (f.status, f.rows_loaded, f.rows_rejected, f.drift) == ("loaded", 5, 0, ["+channel", "+remark"])
    assert any("schema drift: +channel, +remark" in line for line in report.lines())
    extra = conn.execute(
        "select order_id, quantity, _extra from raw.dealer_sales__orders order by order_id"
    ).fetchall()
    assert extra[0] == ("O00000001", 1, {"channel": "线上0", "remark": ""})
    assert conn.execute(
        "select entity, file_name, column_name, kind, business_date from ops.schema_drift"
        " order by column_name"
    ).fetchall() == [
        ("orders", "orders.csv", "channel", "extra_column", D1),
        ("orders", "orders.csv", "remark", "extra_column", D1),
    ]
    assert conn.execute("select drift_columns from ops.load_manifest where entity = 'orders'").fetchone()[
        0
    ] == ["+channel", "+remark"]


def test_extra_json_field_goes_to_extra_and_schema_drift(db_url, conn, tmp_path):
    rows = day_rows(D1)["call_center.calls"]
    rows[2] = {**rows[2], "queue": {"name": "VIP", "wait_s": 3}}
    write_entity(tmp_path, "call_center.calls", D1, rows, header=[*rows[0], "queue"])
    f = load_date(db_url, str(tmp_path), D1, sources=["call_center"]).files[0]
    assert (f.status, f.rows_loaded, f.drift) == ("loaded", 5, ["+queue"])
    got = conn.execute("select call_id, _extra from raw.call_center__calls order by call_id").fetchall()
    assert got[0][1] == {"queue": None}
    assert got[2][1] == {"queue": {"name": "VIP", "wait_s": 3}}
    assert conn.execute("select column_name, kind from ops.schema_drift").fetchall() == [
        ("queue", "extra_column")
    ]


# ----------------------------------------------------------------------------- bad rows
def test_bad_csv_rows_are_rejected_with_line_raw_text_and_reason(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    good = day_rows(D1, n=3)["dealer_sales.orders"][0]
    cols = ORDERS.column_names
    bad = [
        {**good, "order_id": "X1", "quantity": "abc"},
        {**good, "order_id": "X2", "status": "lost"},
        {**good, "order_id": "X3", "quantity": "-4"},
        {**good, "order_id": "X4", "quantity": "0"},
        {**good, "order_id": "", "order_line": "1"},
        {**good, "order_id": "X6", "sku": "SKU9999"},
        {**good, "order_id": "X7", "order_date": "2026-02-30"},
        {**good, "order_id": "X8", "unit_price": "-1.00", "updated_at": "yesterday"},
        {**good, "order_id": "X9", "order_line": "0"},
    ]
    rows = [good, *bad, {**good, "order_id": "OK2", "quantity": " 7 ", "unit_price": "3.456"}]
    data = csv_bytes(cols, ([r[c] for c in cols] for r in rows))
    data += b"X10,1,2026-11-02,D0001\r\n"  # too few fields
    write_bytes(file_path(tmp_path, ORDERS, D1), data)

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]
    assert (f.status, f.rows_in, f.rows_loaded, f.rows_rejected) == ("loaded", 12, 2, 10)
    assert f.over_threshold and f.reject_share == pytest.approx(10 / 12)
    assert conn.execute(
        "select order_id, quantity, unit_price::text, _line_number from raw.dealer_sales__orders order by 4"
    ).fetchall() == [("O00000001", 1, "1.25", 2), ("OK2", 7, "3.46", 12)]

    rejects = _rejects(conn, "orders")
    assert [r[0] for r in rejects] == ["orders.csv"] * 10
    assert [r[1] for r in rejects] == [*range(3, 12), 13]
    assert rejects[0][2] == "X1,2,2026-11-02,D0001,A000001,SKU0001,abc,1.25,placed,2026-11-02T16:00:00"
    assert rejects[-1][2] == "X10,1,2026-11-02,D0001"
    reasons = [r[3] for r in rejects]
    assert reasons == [
        "quantity: not an integer ('abc')",
        "status: 'lost' not one of placed, shipped, cancelled, returned",
        "quantity: must be > 0 (got '-4')",
        "quantity: must be > 0 (got '0')",
        "order_id: required value missing",
        "sku: unknown crm.products sku 'SKU9999'",
        "order_date: not a valid date ('2026-02-30')",
        "unit_price: must be >= 0 (got '-1.00'); updated_at: not an ISO 8601 timestamp ('yesterday')",
        "order_line: must be >= 1 (got '0')",
        "expected 10 fields, got 4",
    ]
    _assert_reconciled(conn)


def test_unknown_foreign_keys_are_rejected_with_the_reason(db_url, conn, tmp_path):
    rows = day_rows(D1, n=3)
    agent = rows["crm.partners"][3]
    rows["crm.partners"] += [
        {**agent, "partner_id": "A000077", "parent_partner_id": "D0099"},  # parent unknown
        {**agent, "partner_id": "A000078", "parent_partner_id": "D0050"},  # parent comes later in the file
        {**rows["crm.partners"][0], "partner_id": "D0050"},
        {**agent, "partner_id": "A000079", "parent_partner_id": "A000078"},  # parent is an agent
    ]
    visit = rows["crm.visits"][1]
    rows["crm.visits"] += [
        {**visit, "visit_id": "V9", "manager_id": "M999"},
        {**visit, "visit_id": "V10", "partner_id": "A000077"},  # its partner was rejected
        {**visit, "visit_id": "V11", "partner_id": "A000079"},
    ]
    inv = rows["dealer_sales.inventory"][0]
    rows["dealer_sales.inventory"].append({**inv, "sku": "NOPE"})
    for q, r in rows.items():
        write_entity(tmp_path, q, D1, r)

    report = _by_entity(load_date(db_url, str(tmp_path), D1))
    assert (report["partners"].rows_in, report["partners"].rows_loaded) == (10, 9)
    assert _rejects(conn, "partners") == [
        (
            "partners.csv",
            8,
            _csv_line(rows["crm.partners"][6]),
            "parent_partner_id: unknown crm.partners partner_id 'D0099'",
        )
    ]
    loaded = {r[0] for r in conn.execute("select partner_id from raw.crm__partners")}
    assert {"A000078", "D0050", "A000079"} <= loaded and "A000077" not in loaded

    assert (report["visits"].rows_in, report["visits"].rows_loaded, report["visits"].rows_rejected) == (
        6,
        4,
        2,
    )
    assert [(r[1], r[3]) for r in _rejects(conn, "visits")] == [
        (6, "manager_id: unknown crm.channel_managers manager_id 'M999'"),
        (7, "partner_id: unknown crm.partners partner_id 'A000077'"),
    ]
    assert [(r[1], r[3]) for r in _rejects(conn, "inventory")] == [
        (5, "sku: unknown crm.products sku 'NOPE'")
    ]
    _assert_reconciled(conn)


def _csv_line(row: dict) -> str:
    cols = entity("crm.partners").column_names
    return csv_bytes(cols, [[row[c] for c in cols]]).decode().split("\r\n")[1]


def test_bad_json_lines_are_rejected_with_line_and_reason(db_url, conn, tmp_path):
    rows = day_rows(D1, n=3)["call_center.calls"]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(1, '{"call_id": "C9", "direction": "sideways"')  # broken JSON
    lines.insert(2, "")  # blank lines are not rows
    lines.insert(3, "[1, 2]")
    lines.append(json.dumps({**rows[0], "call_id": "C8", "direction": "sideways", "satisfaction": 9}))
    path = tmp_path / "call_center" / D1.isoformat() / "calls.jsonl"
    write_bytes(path, ("\n".join(lines) + "\n").encode())
    f = load_date(db_url, str(tmp_path), D1, sources=["call_center"]).files[0]
    assert (f.rows_in, f.rows_loaded, f.rows_rejected) == (6, 3, 3)
    rejects = _rejects(conn, "calls")
    assert [(r[1], r[2][:12]) for r in rejects] == [(2, '{"call_id": '), (4, "[1, 2]"), (7, '{"call_id": ')]
    assert rejects[0][3].startswith("not valid JSON")
    assert rejects[1][3] == "not a JSON object"
    assert rejects[2][3] == (
        "direction: 'sideways' not one of inbound, outbound; satisfaction: must be <= 5 (got '9')"
    )
    _assert_reconciled(conn)


def test_bad_xlsx_rows_carry_their_sheet_row_number(db_url, conn, tmp_path):
    rows = day_rows(D1)
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    orders = rows["dealer_sales.orders"]
    orders[2] = {**orders[2], "quantity": "-3"}
    write_entity(tmp_path, "dealer_sales.orders", D1, orders, fmt="xlsx")
    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]
    assert (f.status, f.rows_in, f.rows_loaded, f.rows_rejected) == ("loaded", 5, 4, 1)
    assert _rejects(conn, "orders") == [
        (
            "orders.xlsx",
            4,
            "O00000003,2,2026-11-02,D0003,A000003,SKU0003,-3,3.25,placed,2026-11-02T16:00:00",
            "quantity: must be > 0 (got '-3')",
        )
    ]


# ----------------------------------------------------------------------------- reject threshold
def _orders_with_bad(tmp_path, n: int, bad: int) -> None:
    good = day_rows(D1, n=1)["dealer_sales.orders"][0]
    rows = [{**good, "order_id": f"O{i:05d}", "quantity": "x" if i < bad else "1"} for i in range(n)]
    write_entity(tmp_path, "dealer_sales.orders", D1, rows)


@pytest.mark.parametrize(
    ("bad", "threshold", "over"), [(1, None, False), (2, None, True), (2, "0.05", False)]
)
def test_reject_share_above_the_threshold_is_flagged_for_the_gate(
    db_url, conn, tmp_path, monkeypatch, bad, threshold, over
):
    if threshold is not None:
        monkeypatch.setenv("QUDAO_REJECT_THRESHOLD", threshold)
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    _orders_with_bad(tmp_path, 100, bad)
    report = load_date(db_url, str(tmp_path), D1)
    f = _by_entity(report)["orders"]
    limit = float(threshold or 0.01)
    assert (f.status, f.rows_in, f.rows_rejected, f.reject_share, f.over_threshold) == (
        "loaded",
        100,
        bad,
        bad / 100,
        over,
    )
    assert report.ok  # loaded, not refused: the quality gate is what fails the night
    assert report.reject_threshold == limit
    assert [x.entity for x in report.over_threshold] == (["orders"] if over else [])
    assert conn.execute(
        "select reject_share, reject_threshold, over_threshold from ops.load_manifest where entity = 'orders'"
    ).fetchone() == (bad / 100, limit, over)
    assert any(line.endswith("OVER THRESHOLD") for line in report.lines()) == over
    _assert_reconciled(conn)


def test_the_load_gate_fails_on_a_file_over_the_threshold(db_url, conn, tmp_path):
    from qudao.quality.sql_checks import load_checks

    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    _orders_with_bad(tmp_path, 100, 5)
    load_date(db_url, str(tmp_path), D1)
    failed = [c.check_name for c in load_checks(conn, D1, 0.01) if not c.passed]
    assert failed == ["reject_share[dealer_sales.orders/orders.csv]"]


# ----------------------------------------------------------------------------- incomplete folder
def test_missing_entities_names_what_a_date_still_lacks(tmp_path):
    assert missing_entities(str(tmp_path), D1) == [
        "crm.channel_managers",
        "crm.products",
        "crm.partners",
        "crm.visits",
        "call_center.calls",
        "dealer_sales.orders",
        "dealer_sales.inventory",
    ]
    rows = day_rows(D1)
    write_day(
        tmp_path, D1, skip=["crm.channel_filings", "call_center.calls", "dealer_sales.orders", "crm.visits"]
    )
    assert missing_entities(str(tmp_path), "2026-11-02") == [
        "crm.visits",
        "call_center.calls",
        "dealer_sales.orders",
    ]
    write_entity(tmp_path, "call_center.calls", D1, rows["call_center.calls"], fmt="jsonl.gz")
    write_entity(tmp_path, "dealer_sales.orders", D1, rows["dealer_sales.orders"], fmt="xlsx")
    assert missing_entities(str(tmp_path), D1) == ["crm.visits"]
    assert missing_entities(str(tmp_path), date(2026, 11, 3))[0] == "crm.channel_managers"


def test_json_values_postgres_cannot_store_are_rejected_not_fatal(db_url, conn, tmp_path):
    rows = day_rows(D1, n=4)["call_center.calls"]
    lines = [json.dumps(r) for r in rows]
    lines[1] = lines[1].replace('"AG01"', '"AG\\u0000X"')  # NUL: PostgreSQL text cannot hold it
    lines[2] = lines[2].replace('"AG01"', '"AG\\ud800"')  # a lone surrogate: not encodable as UTF-8
    lines[3] = lines[3][:-1] + ', "memo": "x\\u0000"}'  # an extra field jsonb cannot hold
    lines.append(lines[0].replace('"C0000001"', '"C5"')[:-1] + ', "score": NaN}')  # nor NaN
    write_bytes(tmp_path / "call_center" / D1.isoformat() / "calls.jsonl", ("\n".join(lines) + "\n").encode())
    f = load_date(db_url, str(tmp_path), D1, sources=["call_center"]).files[0]
    assert (f.status, f.rows_in, f.rows_loaded, f.rows_rejected, f.drift) == ("loaded", 5, 1, 4, [])
    reasons = [r[3] for r in _rejects(conn, "calls")]
    assert reasons[2:] == [
        "extra columns 'memo': NUL, invalid Unicode or NaN",
        "extra columns 'score': NUL, invalid Unicode or NaN",
    ]
    assert reasons[0] == "agent_id: contains a NUL character"
    assert reasons[1].startswith("agent_id: not valid Unicode")
    _assert_reconciled(conn)


@pytest.mark.parametrize("rows", [5, 60_000])
def test_a_server_error_during_copy_fails_that_file_only(db_url, conn, tmp_path, rows):
    """Not the file's fault (here a constraint the warehouse adds): recorded, not quarantined, rest loads."""
    from upath import UPath

    from qudao_testing.extracts import write_orders_csv

    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    write_orders_csv(UPath(file_path(tmp_path, ORDERS, D1)), rows, D1, skus=5)
    conn.execute("alter table raw.dealer_sales__orders add constraint small check (quantity < 3)")
    report = _by_entity(load_date(db_url, str(tmp_path), D1))
    f = report["orders"]
    assert f.status == "refused" and f.quarantined_to is None
    assert f.error.startswith("orders.csv: load failed: CheckViolation")
    assert file_path(tmp_path, ORDERS, D1).exists()
    assert (report["inventory"].status, report["inventory"].rows_loaded) == ("loaded", 5)
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 0
    assert conn.execute("select status, error from ops.load_manifest where entity = 'orders'").fetchall() == [
        ("refused", f.error)
    ]

    conn.execute("alter table raw.dealer_sales__orders drop constraint small")
    again = _by_entity(load_date(db_url, str(tmp_path), D1))
    assert (again["orders"].status, again["orders"].rows_loaded) == ("loaded", rows)
    current = conn.execute("select status from ops.load_manifest_current where entity = 'orders'").fetchall()
    assert current == [("loaded",)]


def test_a_file_refused_after_many_rows_were_sent_leaves_none_of_them(db_url, conn, tmp_path):
    from upath import UPath

    from qudao_testing.extracts import write_orders_csv

    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    path = write_orders_csv(UPath(file_path(tmp_path, ORDERS, D1)), 60_000, D1)
    with open(path.path, "ab") as f:
        f.write(b"O9,1,2026-11-02,D0001,,SKU0001,1,1.00,placed,2026-11-02T16:00:00\xff\xff\r\n")
    report = _by_entity(load_date(db_url, str(tmp_path), D1))
    assert report["orders"].status == "refused"
    assert report["orders"].error.startswith("orders.csv: unreadable: encoding is none of UTF-8")
    assert report["inventory"].status == "loaded"  # the connection is fine after the aborted COPY
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 0
