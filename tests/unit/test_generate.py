"""The sample-extract generator: contract columns, encodings, formats, determinism, behaviour."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from qudao.contracts import ENTITIES
from qudao_demo import generate

START, END = date(2026, 11, 1), date(2026, 11, 14)  # 11-01 is a GB18030 day, 11-05 a BOM day


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(root, START, END, scale="small", seed=7)
    return root


def _digest(root: Path, day: date) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob(f"*/{day.isoformat()}/*"))
    }


def _csv(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def _rows(root: Path, source: str, name: str, day: date) -> tuple[list[str], list[list[object]]]:
    """Header and rows of an entity's file of a day, whatever format it came in."""
    folder = root / source / day.isoformat()
    (path,) = [p for p in folder.iterdir() if p.name.split(".", 1)[0] == name]
    if path.suffix == ".xlsx":
        ws = load_workbook(path, read_only=True).worksheets[0]
        values = [list(r) for r in ws.iter_rows(values_only=True)]
        return [str(h) for h in values[0]], values[1:]
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        records = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        header = list(records[0]) if records else []
        return header, [list(r.values()) for r in records]
    encoding = "gb18030" if day.toordinal() % 7 == 0 else "utf-8-sig"
    table = _csv(path, encoding)
    return table[0], table[1:]


def test_every_required_entity_every_day_with_contract_columns(landing: Path) -> None:
    for offset in range((END - START).days + 1):
        day = START + timedelta(days=offset)
        for e in ENTITIES:
            header, rows = _rows(landing, e.source, e.name, day)
            if e.name == "calls" and not rows:
                continue
            assert header == list(e.column_names), (e.qualified, day)
            if e.snapshot or e.name in ("orders", "inventory"):
                assert rows, (e.qualified, day)


def test_crm_encodings_vary_by_day(landing: Path) -> None:
    gb = (landing / "crm/2026-11-01/partners.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gb.decode("utf-8")
    assert "合作伙伴" not in gb.decode("gb18030") and "有限公司" in gb.decode("gb18030")
    assert (landing / "crm/2026-11-05/partners.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    plain = (landing / "crm/2026-11-02/partners.csv").read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf") and "有限公司" in plain.decode("utf-8")


def test_formats_vary_by_day(landing: Path) -> None:
    names = Counter(p.name for p in landing.glob("*/*/*"))
    assert names["orders.xlsx"] == 2 and names["orders.csv"] == 12  # one spreadsheet day a week
    assert names["inventory.xlsx"] == 2
    assert names["calls.jsonl.gz"] > 0 and names["calls.jsonl"] > 0
    assert not list(landing.rglob(".*.part")), "no half-written files are left behind"


def test_deterministic_and_independent_of_the_range(landing: Path, tmp_path: Path) -> None:
    day = date(2026, 11, 10)
    generate(tmp_path, day, day, scale="small", seed=7)
    assert _digest(tmp_path, day) == _digest(landing, day)
    other = tmp_path / "other-seed"
    generate(other, day, day, scale="small", seed=8)
    assert _digest(other, day) != _digest(landing, day)


def test_hierarchy_and_realistic_behaviour(landing: Path) -> None:
    header, partners = _rows(landing, "crm", "partners", END)
    col = {name: i for i, name in enumerate(header)}
    dealers = {r[col["partner_id"]] for r in partners if r[col["tier"]] == "1"}
    agents = [r for r in partners if r[col["tier"]] == "2"]
    assert 250 <= len(partners) <= 400, "small scale is about 300 partners"
    assert all(a[col["parent_partner_id"]] in dealers for a in agents), "agents hang under known dealers"
    active_agents = {a[col["partner_id"]] for a in agents if a[col["status"]] == "active"}

    buyers: set[str] = set()
    for offset in range((END - START).days + 1):
        oh, orders = _rows(landing, "dealer_sales", "orders", START + timedelta(days=offset))
        buyers.update(str(r[oh.index("buyer_partner_id")]) for r in orders if r[oh.index("buyer_partner_id")])
    never = active_agents - buyers
    assert active_agents & buyers, "some agents order"
    assert len(never) >= 0.05 * len(active_agents), "some active agents never order"

    inspections: Counter[str] = Counter()
    for offset in range(7):  # Mon 2026-11-02 .. Sun 2026-11-08
        vh, visits = _rows(landing, "crm", "visits", date(2026, 11, 2) + timedelta(days=offset))
        for v in visits:
            if v[vh.index("visit_type")] == "inspection":
                inspections[str(v[vh.index("manager_id")])] += 1
    _, managers = _rows(landing, "crm", "channel_managers", END)
    ids = [str(m[0]) for m in managers]
    assert any(inspections[m] >= 3 for m in ids), "some managers keep the three-a-week rule"
    assert any(inspections[m] < 3 for m in ids), "some managers miss it"
