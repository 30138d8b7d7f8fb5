"""Attacks on the loader that once lost rows or read outside the landing zone (issues 13 and 18).

Each case runs the real loader against a real PostgreSQL and checks exact counts: every
delivered line is loaded, rejected with its line and reason, or the file is refused whole.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import zipfile
from datetime import date

import psycopg
import pytest

from qudao.contracts import entity
from qudao.ingest import load_date
from qudao.quality.sql_checks import load_checks
from qudao_testing.extracts import (
    csv_bytes,
    day_rows,
    file_path,
    write_bytes,
    write_day,
    write_entity,
    xlsx_bytes,
)

pytestmark = pytest.mark.integration

D1 = date(2026, 11, 2)
D2 = date(2026, 11, 3)
ORDERS = entity("dealer_sales.orders")
FILINGS = entity("crm.channel_filings")
VISITS = entity("crm.visits")


def _by_entity(report) -> dict:
    return {f.entity: f for f in report.files}


def _manifest(conn: psycopg.Connection, ent: str) -> tuple:
    return conn.execute(
        "select status, rows_in, rows_loaded, rows_rejected, lines_in, lines_blank, lines_continued"
        " from ops.load_manifest_current where entity = %s",
        (ent,),
    ).fetchone()


def _reconciled(conn: psycopg.Connection, d: date) -> dict[str, bool]:
    return {c.check_name: c.passed for c in load_checks(conn, d, 0.01) if "reconciled" in c.check_name}


# ----------------------------------------------------------------------------- stray quote
def _orders_lines(n: int) -> list[str]:
    rows = day_rows(D1, n=n)["dealer_sales.orders"]
    return (
        csv_bytes(ORDERS.column_names, ([r[c] for c in ORDERS.column_names] for r in rows))
        .decode()
        .splitlines(keepends=True)
    )


def test_a_stray_quote_loses_no_row(db_url, conn, tmp_path):
    """A quote before the order_id of data row 150 once swallowed rows 150–309 into one reject."""
    write_day(tmp_path, D1, n=309, skip=["dealer_sales.orders"])
    lines = _orders_lines(309)
    assert len(lines) == 310  # header + 309 rows
    lines[150] = '"' + lines[150]  # data row 150 is physical line 151
    write_bytes(file_path(tmp_path, ORDERS, D1), "".join(lines).encode())

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]

    assert (f.status, f.rows_in, f.rows_loaded, f.rows_rejected) == ("loaded", 309, 308, 1)
    assert _manifest(conn, "orders") == ("loaded", 309, 308, 1, 309, 0, 0)
    rejects = conn.execute("select line_number, raw_text, reason from ops.rejected_rows").fetchall()
    assert len(rejects) == 1
    line, raw, reason = rejects[0]
    assert (line, raw) == (151, lines[150].rstrip("\r\n"))
    assert reason.startswith("a quote opens a field and never closes on this line"), reason
    # every other delivered order line is in raw, each at its own physical line
    in_raw = conn.execute("select _line_number from raw.dealer_sales__orders order by 1").fetchall()
    assert [r[0] for r in in_raw] == [n for n in range(2, 311) if n != 151]
    assert all(_reconciled(conn, D1).values())


def test_a_stray_quote_before_a_real_quoted_field_loses_no_row(db_url, conn, tmp_path):
    """The quote that closes the stray one belongs to a later row: both rows' lines are re-read."""
    write_day(tmp_path, D1, n=40, skip=["crm.visits"])
    rows = day_rows(D1, n=40)["crm.visits"]
    rows[30] = {**rows[30], "notes": "门店, 库存"}  # quoted by the writer: its quotes close the stray one
    text = csv_bytes(VISITS.column_names, ([r[c] for c in VISITS.column_names] for r in rows)).decode()
    lines = text.splitlines(keepends=True)
    lines[10] = '"' + lines[10]
    write_bytes(file_path(tmp_path, VISITS, D1), "".join(lines).encode())

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["visits"]

    assert (f.rows_in, f.rows_loaded + f.rows_rejected) == (40, 40)
    assert f.rows_rejected >= 1 and f.rows_loaded >= 38
    rejected_lines = [r[0] for r in conn.execute("select line_number from ops.rejected_rows")]
    loaded_lines = [r[0] for r in conn.execute("select _line_number from raw.crm__visits")]
    # the first visit's note spans lines 2–3 (day_rows writes it so): every other line starts a record
    assert sorted(rejected_lines + loaded_lines) == [2, *range(4, 43)]
    assert 11 in rejected_lines
    assert all(_reconciled(conn, D1).values())


def test_a_real_line_break_in_a_note_loads_as_one_record(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["crm.visits"])
    rows = day_rows(D1)["crm.visits"]
    rows[1] = {**rows[1], "notes": "第一行\r\n第二行"}
    write_entity(tmp_path, "crm.visits", D1, rows)

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["visits"]

    # day_rows' first visit has a two-line note too: 5 records on 7 lines after the header
    assert (f.rows_in, f.rows_loaded, f.rows_rejected, f.lines_in, f.lines_continued) == (5, 5, 0, 7, 2)
    notes = conn.execute("select notes from raw.crm__visits where _line_number = 4").fetchone()[0]
    assert notes == "第一行\r\n第二行"
    assert all(_reconciled(conn, D1).values())


def test_a_line_break_in_a_key_is_a_broken_record_not_a_value(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["crm.visits"])
    rows = day_rows(D1)["crm.visits"]
    rows[1] = {**rows[1], "visit_id": "V1\nV2"}
    write_entity(tmp_path, "crm.visits", D1, rows)

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["visits"]

    # the two physical lines of the broken record are judged apart: both are rejected
    assert (f.rows_in, f.rows_loaded, f.rows_rejected, f.lines_in) == (6, 4, 2, 7)
    assert (
        conn.execute("select count(*) from raw.crm__visits where visit_id like '%%V2%%'").fetchone()[0] == 0
    )


def test_a_stray_quote_in_the_header_refuses_the_file(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    lines = _orders_lines(5)
    lines[0] = '"' + lines[0]
    write_bytes(file_path(tmp_path, ORDERS, D1), "".join(lines).encode())
    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]
    assert f.status == "refused"
    assert f.error == "orders.csv: unreadable: line 1 (the header): a quote opens and never closes"


# ----------------------------------------------------------------------------- symbolic links
def _secret(tmp_path) -> bytes:
    outside = tmp_path / "outside"
    outside.mkdir()
    rows = day_rows(D1)["crm.channel_filings"]
    rows[0] = {**rows[0], "reason": "password=hunter2"}
    data = csv_bytes(FILINGS.column_names, ([r[c] for c in FILINGS.column_names] for r in rows))
    (outside / "secret.csv").write_bytes(data)
    return data


def test_a_symlinked_file_is_refused_unread_and_left_in_place(db_url, conn, tmp_path):
    landing = tmp_path / "landing"
    write_day(landing, D1, skip=["crm.channel_filings"])
    data = _secret(tmp_path)
    link = landing / "crm" / D1.isoformat() / "channel_filings.csv"
    link.symlink_to(tmp_path / "outside" / "secret.csv")

    f = _by_entity(load_date(db_url, str(landing), D1))["channel_filings"]

    assert f.status == "refused"
    assert "is a symbolic link" in f.error and "QUDAO_LANDING_ALLOW_SYMLINKS" in f.error
    assert f.quarantined_to is None and link.is_symlink()
    assert (tmp_path / "outside" / "secret.csv").read_bytes() == data
    assert conn.execute("select count(*) from raw.crm__channel_filings").fetchone()[0] == 0
    assert (
        conn.execute("select count(*) from ops.rejected_rows where raw_text like '%%hunter2%%'").fetchone()[0]
        == 0
    )
    assert conn.execute(
        "select sha256 from ops.load_manifest where entity = 'channel_filings'"
    ).fetchone() == ("",)  # not even read to hash it


def test_a_symlinked_date_folder_is_refused(db_url, conn, tmp_path):
    landing = tmp_path / "landing"
    write_day(landing, D1, skip=["dealer_sales.orders", "dealer_sales.inventory"])
    elsewhere = tmp_path / "elsewhere"
    write_day(elsewhere, D1)
    (landing / "dealer_sales").mkdir()
    (landing / "dealer_sales" / D1.isoformat()).symlink_to(elsewhere / "dealer_sales" / D1.isoformat())

    report = load_date(db_url, str(landing), D1)

    refused = {f.entity: f.error for f in report.files if f.status == "refused"}
    assert sorted(refused) == ["inventory", "orders"]
    assert all(f"dealer_sales/{D1.isoformat()} is a symbolic link (folder)" in e for e in refused.values())
    assert conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()[0] == 0
    assert (elsewhere / "dealer_sales" / D1.isoformat() / "orders.csv").exists()


def test_links_allowed_by_setting_still_stay_inside_the_landing_zone(db_url, conn, tmp_path, monkeypatch):
    monkeypatch.setenv("QUDAO_LANDING_ALLOW_SYMLINKS", "true")
    landing = tmp_path / "landing"
    write_day(landing, D1, skip=["crm.channel_filings", "dealer_sales.orders"])
    _secret(tmp_path)
    (landing / "crm" / D1.isoformat() / "channel_filings.csv").symlink_to(tmp_path / "outside" / "secret.csv")
    inside = write_entity(landing / "_shared", "dealer_sales.orders", D1, day_rows(D1)["dealer_sales.orders"])
    (landing / "dealer_sales" / D1.isoformat() / "orders.csv").symlink_to(inside.path)

    files = _by_entity(load_date(db_url, str(landing), D1))

    assert files["channel_filings"].status == "refused"
    assert "leads out of the landing zone" in files["channel_filings"].error
    assert (files["orders"].status, files["orders"].rows_loaded) == ("loaded", 5)


# ----------------------------------------------------------------------------- encodings
def test_shift_jis_is_refused_by_name_not_read_as_gb18030(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["crm.channel_filings"])
    rows = [
        {**r, "reason": "在庫不足のため、来週に再提出します"} for r in day_rows(D1)["crm.channel_filings"]
    ]
    data = csv_bytes(FILINGS.column_names, ([r[c] for c in FILINGS.column_names] for r in rows), "shift_jis")
    data.decode("gb18030")  # the trap: these bytes are valid GB18030
    write_bytes(file_path(tmp_path, FILINGS, D1), data)

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["channel_filings"]

    assert f.status == "refused"
    assert f.error.startswith(
        "channel_filings.csv: unreadable: encoding is none of UTF-8, UTF-8 with BOM, GB18030"
    )
    assert "it looks like Shift-JIS" in f.error
    assert conn.execute("select count(*) from raw.crm__channel_filings").fetchone()[0] == 0


def test_gb18030_chinese_with_a_rare_character_still_loads(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["crm.channel_filings"])
    rows = [
        {**r, "reason": f"合同变更，负责人王堃{i}"} for i, r in enumerate(day_rows(D1)["crm.channel_filings"])
    ]
    write_entity(tmp_path, "crm.channel_filings", D1, rows, encoding="gb18030")
    f = _by_entity(load_date(db_url, str(tmp_path), D1))["channel_filings"]
    assert (f.status, f.encoding, f.rows_loaded) == ("loaded", "gb18030", 5)
    assert conn.execute("select reason from raw.crm__channel_filings where _line_number = 2").fetchone() == (
        "合同变更，负责人王堃0",
    )


# ----------------------------------------------------------------------------- what PostgreSQL takes
def test_an_offset_postgresql_cannot_read_is_a_reject_not_a_refused_file(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    rows = day_rows(D1)["dealer_sales.orders"]
    rows[1] = {**rows[1], "updated_at": "2026-11-01T10:00:00+16:00"}
    rows[2] = {**rows[2], "updated_at": "2026-11-01T10:00:00+15:59"}
    write_entity(tmp_path, "dealer_sales.orders", D1, rows)

    f = _by_entity(load_date(db_url, str(tmp_path), D1))["orders"]

    assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", 4, 1)
    assert conn.execute("select line_number, reason from ops.rejected_rows").fetchall() == [
        (3, "updated_at: UTC offset out of range, PostgreSQL accepts ±15:59 ('2026-11-01T10:00:00+16:00')")
    ]
    assert conn.execute(
        "select updated_at = '2026-11-01T10:00:00+15:59' from raw.dealer_sales__orders where _line_number = 4"
    ).fetchone() == (True,)


# ----------------------------------------------------------------------------- smaller
def test_json_lines_of_arrays_are_refused_saying_what_they_are(db_url, conn, tmp_path):
    path = file_path(tmp_path, entity("call_center.calls"), D1)
    write_bytes(path, b'["C1", "inbound", "callback"]\n["C2", "outbound", "sales"]\n')
    f = load_date(db_url, str(tmp_path), D1, sources=["call_center"]).files[0]
    assert (f.status, f.error) == (
        "refused",
        "calls.jsonl: unreadable: no line holds a JSON object (line 1 is a JSON array); "
        "JSON Lines carry one object per line",
    )


def test_unexpected_files_are_listed_in_the_manifest_and_the_summary(db_url, conn, tmp_path):
    write_day(tmp_path, D1)
    folder = tmp_path / "dealer_sales" / D1.isoformat()
    (folder / "Orders.csv").write_bytes(b"x")
    (folder / "orders .csv").write_bytes(b"y")

    for _ in range(2):  # a rerun lists them again, once
        report = load_date(db_url, str(tmp_path), D1)

    names = [f"dealer_sales/{D1.isoformat()}/{n}" for n in ("Orders.csv", "orders .csv")]
    assert report.unexpected == names
    assert f"unexpected file {names[0]}: no contract entity has that name; not loaded" in report.lines()
    assert conn.execute(
        "select file_name from ops.load_manifest_current where status = 'unexpected' order by 1"
    ).fetchall() == [("Orders.csv",), ("orders .csv",)]
    warn = [c for c in load_checks(conn, D1, 0.01) if c.check_name == "no_unexpected_files"]
    assert [(c.severity, c.passed) for c in warn] == [("warn", False)]
    assert report.ok


def test_an_empty_delivery_is_that_dates_delivery_not_a_duplicate(db_url, conn, tmp_path):
    header_only = csv_bytes(FILINGS.column_names, [])
    for d in (D1, D2):
        write_day(tmp_path, d, skip=["crm.channel_filings"])
        write_bytes(file_path(tmp_path, FILINGS, d), header_only)
        f = _by_entity(load_date(db_url, str(tmp_path), d))["channel_filings"]
        assert (f.status, f.rows_in) == ("loaded", 0)
    assert conn.execute(
        "select business_date, status from ops.load_manifest where entity = 'channel_filings' order by 1"
    ).fetchall() == [(D1, "loaded"), (D2, "loaded")]


# ----------------------------------------------------------------------------- decompression bombs
def _xlsx_bomb(expanded: int) -> bytes:
    """A workbook whose shared-strings part expands to ``expanded`` bytes from a few KiB."""
    good = io.BytesIO(xlsx_bytes(ORDERS.column_names, []))
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != "xl/sharedStrings.xml":
                dst.writestr(item, src.read(item))
        with dst.open("xl/sharedStrings.xml", "w") as part:
            block = b"<si><t>" + b"A" * (1 << 20) + b"</t></si>"
            part.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            for _ in range(expanded // len(block)):
                part.write(block)
            part.write(b"</sst>")
    return out.getvalue()


#: runs ``qudao load`` and prints the process's own peak RSS: VmHWM belongs to the memory
#: of the new program (exec starts it afresh), unlike ru_maxrss, which keeps the peak of
#: the forked copy of the (large) test process
_LOAD_AND_REPORT = """
import sys
from qudao.cli import main
try:
    code = main(sys.argv[1:])
finally:
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("PEAK_KIB", peak.split()[1], flush=True)
sys.exit(code)
"""


def _load_in_child(db_url: str, landing: str, source: str) -> tuple[str, int]:
    """``qudao load`` in a child process: its output and its own peak memory (KiB)."""
    env = {**os.environ, "QUDAO_WAREHOUSE_URL": db_url}
    args = ["load", "--landing", landing, "--date", D1.isoformat(), "--source", source]
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_REPORT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    out = done.stdout + done.stderr
    peak = next(line for line in done.stdout.splitlines() if line.startswith("PEAK_KIB "))
    return out, int(peak.split()[1])


def test_an_xlsx_decompression_bomb_is_refused_in_bounded_memory(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    bomb = _xlsx_bomb(300 << 20)
    assert len(bomb) < 2 << 20
    write_bytes(file_path(tmp_path, ORDERS, D1, "xlsx"), bomb)

    out, peak_kib = _load_in_child(db_url, str(tmp_path), "dealer_sales")

    assert "orders.xlsx: refused: part xl/sharedStrings.xml expands" in out, out
    assert "a decompression bomb" in out
    assert peak_kib < 400 * 1024, f"peak RSS {peak_kib} KiB"
    assert _manifest(conn, "orders")[0] == "refused"
    assert (tmp_path / "_quarantine" / "dealer_sales" / D1.isoformat() / "orders.xlsx").exists()


def test_a_gzip_decompression_bomb_is_refused(db_url, conn, tmp_path):
    bomb = gzip.compress(b" " * (64 << 20), mtime=0)
    write_bytes(file_path(tmp_path, entity("call_center.calls"), D1, "jsonl.gz"), bomb)
    f = load_date(db_url, str(tmp_path), D1, sources=["call_center"]).files[0]
    assert f.status == "refused"
    assert f.error.startswith("calls.jsonl.gz: refused: expands ") and "decompression bomb" in f.error


def _understate(workbook: bytes, part: str, declared: int) -> bytes:
    """The workbook with ``part``'s uncompressed size understated in its local and central headers."""
    data = bytearray(workbook)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == part.encode():
            struct.pack_into("<I", data, at + 24, declared)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, declared)
            return bytes(data)
        at += 4
    raise AssertionError(f"{part} not in the workbook")


def test_an_xlsx_part_that_understates_its_size_is_refused_in_bounded_memory(db_url, conn, tmp_path):
    write_day(tmp_path, D1, skip=["dealer_sales.orders"])
    liar = _understate(_xlsx_bomb(300 << 20), "xl/sharedStrings.xml", 4096)
    write_bytes(file_path(tmp_path, ORDERS, D1, "xlsx"), liar)

    out, peak_kib = _load_in_child(db_url, str(tmp_path), "dealer_sales")

    assert "orders.xlsx: unreadable: not an XLSX workbook (Bad CRC-32" in out, out
    assert peak_kib < 400 * 1024, f"peak RSS {peak_kib} KiB"
    assert _manifest(conn, "orders")[0] == "refused"
