"""``qudao docs`` describes the relations analysts query: ``marts.*``, not ``marts_candidate.*``."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from qudao.transform import docs, docs_dir, manifest_path

pytestmark = pytest.mark.integration


def test_docs_describe_the_published_schema(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUDAO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QUDAO_PII_KEY", "docs-test-key")
    with psycopg.connect(db_url) as conn:  # a published mart, as publish leaves it
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.mart_channel_coverage (as_of_date date, region_code text)")

    index = docs(db_url)

    assert index == docs_dir() / "index.html" and index.exists()
    assert index.parent != manifest_path().parent, "the nightly build's manifest is left alone"
    manifest = json.loads((index.parent / "manifest.json").read_text(encoding="utf-8"))
    marts = {
        n["name"]: n["schema"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["path"].startswith("marts/")
    }
    assert "mart_channel_coverage" in marts and "fct_calls" in marts
    assert set(marts.values()) == {"marts"}, marts
    catalog = json.loads((index.parent / "catalog.json").read_text(encoding="utf-8"))
    node = catalog["nodes"]["model.qudao.mart_channel_coverage"]
    assert node["metadata"]["schema"] == "marts"
    assert set(node["columns"]) == {"as_of_date", "region_code"}
    assert not any(n["metadata"]["schema"] == "marts_candidate" for n in catalog["nodes"].values())
