"""The gate's Data Docs load nothing from the network and keep one page per night.

Great Expectations runs for real against PostgreSQL; two nights' gate runs (and a
rerun of the first) must leave two night pages linked from the index, every page's
CSS and JavaScript local and present.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.quality.data_docs import CSS_PATH, night_page
from qudao.quality.gx_runner import Batch, run_batches
from qudao.quality.suites import Suite
from qudao.warehouse.connection import sqlalchemy_url

pytestmark = pytest.mark.integration

D1, D2 = date(2026, 11, 3), date(2026, 11, 4)
ASSET_REFS = re.compile(
    r"""<link\b[^>]*\bhref=["']([^"']+)["'][^>]*>|<script\b[^>]*\bsrc=["']([^"']+)["']""", re.I
)


def _batch(column: str) -> Batch:
    not_null = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}}
    suite = Suite(
        "public.deliveries", "raw", "public.deliveries", None, [{**not_null, "meta": {"severity": "error"}}]
    )
    return Batch(suite, "select * from public.deliveries")


def test_data_docs_work_offline_with_a_page_per_night(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("create table public.deliveries (id int, note text)")
        conn.execute("insert into public.deliveries values (1, 'a'), (2, null)")
    site = tmp_path / "data_docs"
    url = sqlalchemy_url(db_url)

    _, first = run_batches(url, [_batch("id")], site, "n1-all", night=D1)
    _, second = run_batches(url, [_batch("id")], site, "n2-all", night=D2)
    results, rerun = run_batches(url, [_batch("note")], site, "n1b-all", night=D1)

    assert [r.passed for r in results] == [False]
    assert (first, second, rerun) == (night_page(site, D1), night_page(site, D2), night_page(site, D1))
    assert first == site / "nights" / "2026-11-03" / "index.html"
    one, two = first.read_text(encoding="utf-8"), second.read_text(encoding="utf-8")
    assert "n1-all" in one and "n1b-all" in one and "n2-all" not in one  # both runs of the night
    assert "n2-all" in two and "n1" not in two
    assert "[error] expect_column_values_to_not_be_null(note): observed 1 of 2 rows unexpected" in one
    assert "Gate run n1b-all: <span" in one and "1 error(s)" in one
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="nights/2026-11-04/index.html"' in index and 'href="nights/2026-11-03/index.html"' in index

    gx_pages = re.findall(r'href="\.\./\.\./(validations/[^"]+\.html)"', one + two)
    assert len(gx_pages) == 3 and all((site / p).exists() for p in gx_pages), gx_pages

    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 6  # index, 2 nights, 3 validations (+ the suite's page)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        refs = [a or b for a, b in ASSET_REFS.findall(text)]
        assert not [r for r in refs if re.match(r"(?i)https?:|//", r)], page
        for ref in refs:
            assert (page.parent / ref.split("?")[0]).resolve().exists(), (page, ref)
        assert CSS_PATH in text, page
    for sheet in site.rglob("*.css"):
        assert not re.search(r"https?://", sheet.read_text(encoding="utf-8")), sheet
