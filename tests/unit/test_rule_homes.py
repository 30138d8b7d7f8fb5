"""One home per rule: no (table, columns, rule kind) is checked by two layers.

Row-level contract rules belong to the loader (``qudao.contracts``: a broken row is
a reject), structural rules of models to dbt tests, the gate's own checks to the GX
suites under ``expectations/`` (see docs/quality.md, "Which layer owns which rule").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qudao.config import PROJECT_ROOT
from qudao.contracts import ENTITIES
from qudao.quality.suites import load_suites

MANIFEST = PROJECT_ROOT / "dbt_project" / "target" / "manifest.json"

Rule = tuple[str, tuple[str, ...], str]  # (table or model, columns, kind)

#: dbt generic tests and GX expectation types, by the kind of rule they check
DBT_KINDS = {
    "not_null": "not_null",
    "unique": "unique",
    "unique_combination": "unique",
    "accepted_values": "in_set",
    "non_negative": "range",
    "rate_between_0_and_1": "range",
}
GX_KINDS = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_unique": "unique",
    "expect_compound_columns_to_be_unique": "unique",
    "expect_column_values_to_be_in_set": "in_set",
    "expect_column_values_to_be_between": "range",
    "expect_column_values_to_match_regex": "regex",
}


def dbt_rules(manifest: Path) -> set[Rule]:
    """The rules dbt's generic tests check, by model, columns and kind."""
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    rules: set[Rule] = set()
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        kind = DBT_KINDS.get(meta.get("name", ""))
        if node["resource_type"] != "test" or kind is None:
            continue
        model = node["attached_node"].split(".")[-1]
        cols = meta["kwargs"].get("columns") or [node["column_name"]]
        rules.add((model, tuple(sorted(cols)), kind))
    return rules


def gx_rules(stage: str) -> set[Rule]:
    """The rules the GX suites of one stage check (raw tables without their schema)."""
    rules: set[Rule] = set()
    for suite in load_suites(stage=stage):
        table = suite.table.split(".")[-1]
        for exp in suite.expectations:
            kind = GX_KINDS.get(exp["type"])
            if kind is None:
                continue
            kw = exp["kwargs"]
            cols = kw.get("column_list") or [kw["column"]]
            rules.add((table, tuple(sorted(cols)), kind))
    return rules


def contract_rules() -> set[Rule]:
    """The row-level rules the loader enforces (a row breaking one is a reject)."""
    rules: set[Rule] = set()
    for e in ENTITIES:
        for c in e.columns:
            col = (c.name,)
            if c.required:
                rules.add((e.raw_table, col, "not_null"))
            if c.enum:
                rules.add((e.raw_table, col, "in_set"))
            if c.min_value is not None or c.max_value is not None:
                rules.add((e.raw_table, col, "range"))
            if c.pattern:
                rules.add((e.raw_table, col, "regex"))
    return rules


def test_the_comparison_sees_rules_on_both_sides() -> None:
    # guards against a normalisation that silently finds nothing to compare
    assert len(contract_rules()) > 30
    assert {k for _, _, k in gx_rules("candidate")} >= {"range", "unique"}


def test_no_mart_rule_is_both_a_dbt_test_and_a_gx_expectation() -> None:
    if not MANIFEST.exists():
        pytest.skip("no dbt manifest: run `qudao dbt-parse`")
    dbt = dbt_rules(MANIFEST)
    assert len(dbt) > 50
    assert sorted(dbt & gx_rules("candidate")) == []


def test_raw_suites_do_not_repeat_the_loaders_contract_rules() -> None:
    assert sorted(contract_rules() & gx_rules("raw")) == []
