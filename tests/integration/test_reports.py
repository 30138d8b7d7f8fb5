"""The weekly bulletin of the fixture week 2026-W45 (Mon 11-02 … Sun 11-08), read back.

The published marts hold the nights 11-06 … 11-08 of ``tests/fixtures/marts_numbers``
(``conftest.published_nights``). The test parses the HTML and the XLSX and checks
their numbers against the marts and the hand-worked values of ``test_marts_numbers.py``.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import date, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from python_calamine import CalamineWorkbook

from qudao.cli import main
from qudao.reports.deliver import Rendered, periods_closed_by, render, send_report
from qudao.reports.periods import closed_month, closed_week, parse_month, parse_week

pytestmark = pytest.mark.integration

WEEK = parse_week("2026-W45")


class _Tables(HTMLParser):
    """Every ``<table id=…>``'s rows of ``data-value`` cells; the chart divs; the scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.charts: list[str] = []
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = str(a["id"]).removeprefix("t-")
            self.tables[self._table] = []
        elif tag == "tr" and self._table and a.get("class") is None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table and "data-value" in a:
            self.tables[self._table][-1].append(str(a["data-value"]))
        elif tag == "div" and a.get("class") == "chart":
            self.charts.append(str(a["id"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.tables[str(self._table)] = [r for r in self.tables[str(self._table)] if r]
            self._table = None


@pytest.fixture(scope="module")
def bulletin(published_nights: str, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return render(published_nights, WEEK, out_dir=tmp_path_factory.mktemp("reports"), send=False)


@pytest.fixture(scope="module")
def page(bulletin: Rendered) -> _Tables:
    parser = _Tables()
    parser.feed(bulletin.html.read_text(encoding="utf-8"))
    return parser


def marts(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql).fetchall()


def test_periods() -> None:
    assert (WEEK.start, WEEK.end, WEEK.label) == (date(2026, 11, 2), date(2026, 11, 8), "2026-W45")
    assert closed_week(date(2026, 11, 8)) == WEEK  # Sunday's night closes its week
    assert closed_week(date(2026, 11, 7)) == parse_week("2026-W44")
    assert closed_month(date(2026, 11, 30)) == parse_month("2026-11")
    assert closed_month(date(2026, 11, 29)) == parse_month("2026-10")
    assert WEEK.previous().label == "2026-W44" and parse_month("2026-01").previous().label == "2025-12"
    with pytest.raises(ValueError, match="ISO week"):
        parse_week("2026-45")
    with pytest.raises(ValueError, match="no such ISO week"):
        parse_week("2026-W54")


def test_the_folder_and_files(bulletin: Rendered) -> None:
    assert bulletin.html.parent.name == "2026-W45"
    assert (
        bulletin.html.name == "渠道周通报_2026-W45.html" and bulletin.xlsx.name == "渠道周通报_2026-W45.xlsx"
    )
    assert periods_closed_by(date(2026, 11, 30)) == [parse_week("2026-W48"), parse_month("2026-11")]
    assert periods_closed_by(date(2026, 11, 8)) == [WEEK]
    assert periods_closed_by(date(2026, 11, 11)) == [WEEK]


def test_html_numbers(page: _Tables, published_nights: str, bulletin: Rendered) -> None:
    text = bulletin.html.read_text(encoding="utf-8")
    assert "渠道周通报 2026年第45周（11月2日—11月8日）" in text and "数据截至 2026-11-08" in text
    assert page.charts == [
        "chart-coverage",
        "chart-agents_top",
        "chart-agents_bottom",
        "chart-inspections",
        "chart-callbacks",
        "chart-inventory",
        "chart-filings",
    ]
    # call-backs: 1 of 5, 1 of 2, 0 of 4 (test_marts_numbers.test_callback_compliance)
    assert page.tables["callbacks"] == [
        ["2026-11-06", "5", "1", "0.2", "是"],
        ["2026-11-07", "2", "1", "0.5", "是"],
        ["2026-11-08", "4", "0", "0.0", "否"],
    ]
    mart = marts(
        published_nights,
        "select business_date, partners_developed, partners_called_back, callback_rate"
        " from marts.mart_callback_compliance order by business_date",
    )
    assert [[r[0], r[1], r[2], r[3]] for r in page.tables["callbacks"]] == [
        [d.isoformat(), str(n), str(c), str(float(rate))] for d, n, c, rate in mart
    ]
    # agents on Sunday 11-08: D0002 2 of 2 active, D0001 1 of 3; no week before in the marts
    top = [r for r in page.tables["agents"] if r[0] == "前10"]
    assert [(r[1], r[3], r[4], r[5], r[6]) for r in top] == [
        ("D0002", "2", "2", "1.0", ""),
        ("D0001", "3", "1", "0.3333333333", ""),
    ]
    # inspections of the week: M001 3 partners (4 visits), M002 1
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in page.tables["inspections"]] == [
        ("2026-11-02", "M001", "4", "3", "是"),
        ("2026-11-02", "M002", "1", "1", "否"),
    ]
    # inventory at 11-08 by the partner's province: D0003 (Beijing) healthy; Jiangsu one in each other band
    names = dict(
        marts(published_nights, "select distinct province_code, province_name from marts.dim_region")
    )
    assert sorted(r[:8] for r in page.tables["inventory"]) == sorted(
        [
            [names["110000"], "0", "0", "0", "1", "0", "1", "1.0"],
            [names["320000"], "1", "1", "1", "0", "1", "4", "0.0"],
        ]
    )
    # filings on 11-08, the pending one first
    filings = page.tables["filings"]
    assert filings[0][:5] == [names["320000"], "change", "1", "1", "1"]
    assert sorted((r[0], r[1], r[2]) for r in filings) == sorted(
        [
            (names["110000"], "change", "1"),
            (names["320000"], "change", "1"),
            (names["320000"], "new", "1"),
            (names["320000"], "termination", "1"),
        ]
    )
    overview = {r[0]: r[1:] for r in page.tables["overview"]}
    assert overview["回访率"][0] == repr(round(2 / 11, 10))  # (1 + 1 + 0) / (5 + 2 + 4)
    assert overview["巡检达标率"][0] == "0.5"
    assert overview["审批时长中位数(小时)"][0] == "54.0"  # 28 h and 80 h


def test_xlsx(bulletin: Rendered, page: _Tables) -> None:
    import openpyxl

    book = CalamineWorkbook.from_path(str(bulletin.xlsx))
    assert book.sheet_names == [
        "核心指标",
        "有效覆盖率（省份）",
        "有效覆盖率（逐日）",
        "二级代理活跃率（经销商）",
        "渠道经理巡检（周）",
        "每日回访率",
        "库存健康度（省份）",
        "渠道报备（省份、类型）",
    ]
    rows = book.get_sheet_by_name("每日回访率").to_python()
    assert rows[0] == ["日期", "当日发展伙伴数", "当日回访伙伴数", "回访率", "达标"]
    as_dates = [[r[0].date() if isinstance(r[0], datetime) else r[0], *r[1:]] for r in rows[1:]]
    assert as_dates == [
        [date(2026, 11, 6), 5.0, 1.0, 0.2, "是"],
        [date(2026, 11, 7), 2.0, 1.0, 0.5, "是"],
        [date(2026, 11, 8), 4.0, 0.0, 0.0, "否"],
    ]
    agents = book.get_sheet_by_name("二级代理活跃率（经销商）").to_python()
    assert [(r[1], r[3], r[5]) for r in agents[1:] if r[0] == "前10"] == [
        ("D0002", 2.0, 1.0),
        ("D0001", 3.0, 1 / 3),
    ]
    wb = openpyxl.load_workbook(bulletin.xlsx)
    assert all(ws.freeze_panes == "A2" for ws in wb.worksheets)
    assert wb["每日回访率"]["D2"].number_format == "0.00%"


def test_regenerated_report_is_identical(bulletin: Rendered, published_nights: str) -> None:
    before = (bulletin.html.read_bytes(), bulletin.xlsx.read_bytes())
    again = render(published_nights, WEEK, out_dir=bulletin.html.parents[1], send=False)
    assert not again.changed
    assert (again.html.read_bytes(), again.xlsx.read_bytes()) == before


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_email_carries_both_files(bulletin: Rendered, smtp: tuple[int, _Inbox]) -> None:
    port, inbox = smtp
    assert (
        send_report(bulletin, {"QUDAO_SMTP_HOST": "127.0.0.1"}) == "e-mail skipped: no QUDAO_REPORT_EMAIL_TO"
    )
    env = {
        "QUDAO_SMTP_HOST": "127.0.0.1",
        "QUDAO_SMTP_PORT": str(port),
        "QUDAO_REPORT_EMAIL_TO": "qudao@example.com",
    }
    assert send_report(bulletin, env) == "e-mailed to qudao@example.com"
    ((to, message),) = inbox.messages
    assert to == ["qudao@example.com"] and message["Subject"] == "渠道周通报 2026年第45周（11月2日—11月8日）"
    files = {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}
    assert files[bulletin.html.name].replace(b"\r\n", b"\n") == bulletin.html.read_bytes()  # text: CRLF
    assert files[bulletin.xlsx.name] == bulletin.xlsx.read_bytes()


def test_cli(
    published_nights: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", published_nights)
    monkeypatch.setenv("QUDAO_REPORTS_DIR", str(tmp_path))
    assert main(["report", "--week", "2026-W45", "--no-mail"]) == 0
    assert (tmp_path / "2026-W45" / "渠道周通报_2026-W45.xlsx").exists()
    assert "渠道周通报 2026-W45" in capsys.readouterr().out
    assert main(["status"]) == 0
    assert f"  {tmp_path / '2026-W45' / '渠道周通报_2026-W45.html'}" in capsys.readouterr().out.splitlines()
    assert main(["report", "--week", "2026-45"]) == 2
    err = capsys.readouterr().err
    assert "not an ISO week" in err and "Traceback" not in err


def _script_errors(chromium_log: str) -> list[str]:
    """The page's uncaught script errors in Chromium's console log (``--enable-logging=stderr``)."""
    return [line for line in chromium_log.splitlines() if ":CONSOLE" in line and "Uncaught" in line]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on this machine")
def test_the_browser_check_sees_a_script_error(tmp_path: Path) -> None:
    """The console check above can fail: a page that calls an undefined function is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    run = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(_script_errors(run.stderr)) == 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on this machine")
def test_a_browser_draws_the_charts(bulletin: Rendered, tmp_path: Path) -> None:
    """Headless Chromium: no script error, an SVG with drawn paths in every chart, the Chinese text."""
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--lang=zh-CN"]
    url = bulletin.html.as_uri()
    page = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = page.stdout
    assert _script_errors(page.stderr) == []
    parser = _Tables()
    parser.feed(dom)
    assert len(parser.charts) == 7
    for chart in parser.charts:
        start = dom.index(f'id="{chart}"')
        assert "<svg" in dom[start : start + 3000], chart
    assert dom.count("<path") > 50 and "渠道周通报" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1100,2400", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 60_000  # a blank page of this size compresses to a few kB
