"""Readers without a database: encoding detection, header names, whole-record CSV chunks, landing paths."""

from __future__ import annotations

import codecs
import csv
from datetime import date

import pytest
from upath import UPath

from qudao.ingest.errors import FileRefused
from qudao.ingest.formats.csv_files import CsvFile
from qudao.ingest.header import normalise_header
from qudao.ingest.landing import delivered_files, missing_entities, relative_name
from qudao.ingest.prescan import file_format, prescan
from qudao_testing.extracts import write_day

TEXT = "partner_id,partner_name\r\nD0001,北京建材有限公司\r\n"


@pytest.mark.parametrize(
    ("data", "encoding", "nul"),
    [
        (TEXT.encode("utf-8"), "utf-8", False),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig", False),
        (TEXT.encode("gb18030"), "gb18030", False),
        (TEXT.encode("utf-16"), "gb18030", True),
    ],
)
def test_prescan_detects_the_encoding(tmp_path, data, encoding, nul):
    path = UPath(tmp_path / "x.csv")
    path.write_bytes(data)
    scan = prescan(path, text=True)
    assert (scan.encoding, scan.has_nul, scan.size) == (encoding, nul, len(data))
    if nul:
        assert scan.binary_cause().startswith("encoding is UTF-16")


def test_a_utf8_boundary_inside_a_read_chunk_is_not_mistaken_for_gb18030(tmp_path, monkeypatch):
    import qudao.ingest.prescan as prescan_module

    monkeypatch.setattr(prescan_module, "CHUNK_BYTES", 7)  # split multi-byte characters between reads
    path = UPath(tmp_path / "x.csv")
    path.write_bytes(("a\r\n" + "北京" * 50).encode("utf-8"))
    assert prescan(path, text=True).encoding == "utf-8"


def test_file_format_and_header_names():
    assert [file_format(UPath(f"/x/{n}")) for n in ("a.CSV", "b.jsonl", "c.jsonl.gz", "d.xlsx")] == [
        "csv",
        "jsonl",
        "jsonl.gz",
        "xlsx",
    ]
    with pytest.raises(FileRefused, match=r"orders\.txt: unknown file type"):
        file_format(UPath("/x/orders.txt"))
    assert normalise_header([" Order_ID ", "SKU", None, ""]) == ["order_id", "sku", "column_3", "column_4"]


def test_csv_chunks_hold_whole_records_with_physical_line_numbers(tmp_path):
    rows = [[f"V{i}", '第一行\r\n第二行, "引号"' if i % 3 == 0 else "ok"] for i in range(40)]
    path = UPath(tmp_path / "visits.csv")
    with open(path.path, "w", encoding="gb18030", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Visit_ID ", "notes"])
        w.writerows(rows)
    f = CsvFile(path, "gb18030")
    try:
        assert f.header == ["visit_id", "notes"]
        got, line = [], 2
        for chunk in f.chunks(chunk_chars=40):
            assert chunk.first_line == line
            got.extend(csv.reader(chunk.lines))
            line += len(chunk.lines)
    finally:
        f.close()
    assert got == rows
    assert line == 2 + 40 + 14  # 14 records span two physical lines


def test_empty_csv_is_refused(tmp_path):
    path = UPath(tmp_path / "orders.csv")
    path.write_bytes(b"")
    with pytest.raises(FileRefused, match=r"orders\.csv: unreadable: empty file"):
        CsvFile(path, "utf-8")


def test_landing_zone_in_memory_filesystem():
    landing = UPath("memory:///qudao-unit-landing")
    try:
        write_day(landing, date(2026, 11, 2), skip=["crm.visits"])
        files = delivered_files("memory:///qudao-unit-landing", date(2026, 11, 2), ["crm"])
        assert [(e.name, p.name) for e, p in files] == [
            ("channel_managers", "channel_managers.csv"),
            ("products", "products.csv"),
            ("partners", "partners.csv"),
            ("channel_filings", "channel_filings.csv"),
        ]
        assert relative_name(landing, files[0][1]) == "crm/2026-11-02/channel_managers.csv"
        assert missing_entities("memory:///qudao-unit-landing", date(2026, 11, 2)) == ["crm.visits"]
        with pytest.raises(ValueError, match="unknown sources: erp"):
            delivered_files(landing, date(2026, 11, 2), ["erp"])
    finally:
        landing.fs.rm(landing.path, recursive=True)


def test_a_bad_gb18030_sequence_past_the_detection_prefix_is_refused_naming_its_line(tmp_path):
    lines = ["partner_id,partner_name"] + [f"D{i:04d},北京建材有限公司第{i}分部" for i in range(12_000)]
    data = ("\r\n".join(lines) + "\r\n").encode("gb18030") + b"D9999,\xff\xfe\r\nD9998,ok\r\n"
    path = UPath(tmp_path / "partners.csv")
    path.write_bytes(data)
    scan = prescan(path, text=True)
    assert (scan.encoding, scan.implausible) == ("gb18030", None)  # the prefix is plausible Chinese
    f = CsvFile(path, scan.encoding)
    try:
        with pytest.raises(FileRefused) as refused:
            for _ in f.chunks():
                pass
    finally:
        f.close()
    assert str(refused.value).startswith(
        "partners.csv: unreadable: encoding is none of UTF-8, UTF-8 with BOM, GB18030 (line 12002: invalid"
    ), refused.value


def test_the_line_breaks_found_in_a_chunks_bytes_are_the_text_readers_lines():
    from qudao.ingest.formats.csv_files import CsvChunk

    text = "a,1\r\n\r\nb,2\rc,3\n\nd,é\r\n\re"  # CRLF, LF, lone CR, blank lines, no break at the end
    chunk = CsvChunk(2, text, quoted=False)
    ends = chunk.line_ends.tolist()
    starts = [0] + [e + 1 for e in ends[:-1]]
    by_bytes = [chunk.data[s : e + 1].decode("utf-8") for s, e in zip(starts, ends, strict=True)]
    expected = ["a,1\r\n", "\r\n", "b,2\r", "c,3\n", "\n", "d,é\r\n", "\r", "e"]
    assert by_bytes == CsvChunk(2, text).lines == expected
    assert chunk.line_count == 8
