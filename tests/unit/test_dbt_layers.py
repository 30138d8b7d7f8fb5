"""The dbt project's layers, read from its manifest (``qudao dbt-parse`` writes it).

Staging is the only door to raw: no model outside ``models/staging/`` depends on a source
or a ``base_`` model; every ``stg_``/``base_`` model lives under ``staging/<source>/``;
every source has a freshness rule; every public model has an enforced contract with a
primary key. Each check is a function of the manifest, so the tests below also run it
against a copy with a planted violation (the check can fail).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from qudao.config import PROJECT_ROOT

MANIFEST = PROJECT_ROOT / "dbt_project" / "target" / "manifest.json"
STAGING = "models/staging/"
#: public marts whose grain is tested by the GX mart gate (its planted-duplicate proofs)
#: rather than by a dbt test; PostgreSQL enforces it by their primary key like any other
GRAIN_TESTED_BY_THE_GX_GATE = {
    "mart_channel_coverage": ["as_of_date", "region_code"],
    "mart_dealer_inventory_health": ["snapshot_date", "partner_id", "sku"],
}

Manifest = dict[str, Any]


def models(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The project's model nodes, by unique id."""
    return {k: n for k, n in manifest["nodes"].items() if n["resource_type"] == "model"}


def shortcuts_past_staging(manifest: Manifest) -> list[str]:
    """``model -> parent`` for each model outside staging that reads a source or a base_ model."""
    found = []
    for node in models(manifest).values():
        if node["original_file_path"].startswith(STAGING):
            continue
        for parent in node["depends_on"]["nodes"]:
            name = parent.split(".")[-1]
            if parent.startswith("source.") or (parent.startswith("model.") and name.startswith("base_")):
                found.append(f"{node['name']} -> {parent}")
    return sorted(found)


def misplaced_staging_models(manifest: Manifest) -> list[str]:
    """``stg_<source>__…`` / ``base_<source>__…`` models not under ``staging/<source>/``."""
    found = []
    for node in models(manifest).values():
        name, path = node["name"], node["original_file_path"]
        prefix = next((p for p in ("stg_", "base_") if name.startswith(p)), None)
        if prefix is None:
            continue
        source = name[len(prefix) :].split("__")[0]
        folder = f"{STAGING}{source}/" + ("base/" if prefix == "base_" else "")
        if "__" not in name or not path.startswith(folder):
            found.append(f"{name} at {path} (expected under {folder})")
    return sorted(found)


def sources_without_freshness(manifest: Manifest) -> list[str]:
    """Sources with neither a warn_after nor an error_after count."""
    found = []
    for source in manifest["sources"].values():
        rule = source.get("freshness") or {}
        if not any((rule.get(k) or {}).get("count") for k in ("warn_after", "error_after")):
            found.append(f"{source['source_name']}.{source['name']}")
    return sorted(found)


def public_models_without_enforced_key(manifest: Manifest) -> list[str]:
    """Public models whose contract is not enforced or declares no primary_key constraint."""
    found = []
    for node in models(manifest).values():
        if node.get("access") != "public":
            continue
        constraints = list(node.get("constraints") or [])
        for column in node.get("columns", {}).values():
            constraints += column.get("constraints") or []
        if not node["config"]["contract"]["enforced"]:
            found.append(f"{node['name']}: contract not enforced")
        elif not any(c["type"] == "primary_key" for c in constraints):
            found.append(f"{node['name']}: no primary_key constraint")
    return sorted(found)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    if not MANIFEST.exists():
        pytest.skip("no dbt manifest: run `qudao dbt-parse`")
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def test_no_model_outside_staging_reads_a_source_or_a_base_model(manifest: Manifest) -> None:
    assert shortcuts_past_staging(manifest) == []


def test_staging_models_live_under_their_source(manifest: Manifest) -> None:
    assert misplaced_staging_models(manifest) == []
    # the layout is really there to check: models in staging, each kind present
    names = {n["name"] for n in models(manifest).values()}
    assert {"base_crm__partners", "stg_crm__partners", "stg_ops__load_manifest"} <= names


def test_every_source_has_freshness(manifest: Manifest) -> None:
    assert manifest["sources"]
    assert sources_without_freshness(manifest) == []


def test_every_public_model_has_an_enforced_primary_key(manifest: Manifest) -> None:
    public = [n for n in models(manifest).values() if n.get("access") == "public"]
    assert len(public) >= 10
    assert public_models_without_enforced_key(manifest) == []


def test_the_grains_tested_by_the_gx_gate_are_tested_there() -> None:
    """Each mart above has its compound uniqueness expectation in expectations/marts/."""
    for model, columns in GRAIN_TESTED_BY_THE_GX_GATE.items():
        suite = PROJECT_ROOT / "expectations" / "marts" / f"{model}.json"
        expectations = json.loads(suite.read_text(encoding="utf-8"))["expectations"]
        kwargs = [
            e["kwargs"]
            for e in expectations
            if e.get("type", e.get("expectation_type")) == "expect_compound_columns_to_be_unique"
        ]
        assert {"column_list": columns} in kwargs, (model, kwargs)


def _node(manifest: Manifest, name: str) -> dict[str, Any]:
    return manifest["nodes"][f"model.qudao.{name}"]


def test_the_checks_see_planted_violations(manifest: Manifest) -> None:
    """Each check reports a violation planted in a copy of the manifest, and only it."""
    bad = copy.deepcopy(manifest)
    _node(bad, "fct_calls")["depends_on"]["nodes"] += [
        "model.qudao.base_call_center__calls",
        "source.qudao.call_center.calls",
    ]
    _node(bad, "stg_crm__partners")["original_file_path"] = "models/intermediate/stg_crm__partners.sql"
    _node(bad, "base_crm__visits")["original_file_path"] = "models/staging/crm/base_crm__visits.sql"
    (source_id,) = [k for k in bad["sources"] if k.endswith(".crm.partners")]
    bad["sources"][source_id]["freshness"] = {"warn_after": {"count": None}, "error_after": None}
    _node(bad, "fct_visits")["constraints"] = []
    _node(bad, "dim_partner")["config"]["contract"]["enforced"] = False

    assert shortcuts_past_staging(bad) == [
        "fct_calls -> model.qudao.base_call_center__calls",
        "fct_calls -> source.qudao.call_center.calls",
    ]
    assert misplaced_staging_models(bad) == [
        "base_crm__visits at models/staging/crm/base_crm__visits.sql"
        " (expected under models/staging/crm/base/)",
        "stg_crm__partners at models/intermediate/stg_crm__partners.sql (expected under models/staging/crm/)",
    ]
    assert sources_without_freshness(bad) == ["crm.partners"]
    assert public_models_without_enforced_key(bad) == [
        "dim_partner: contract not enforced",
        "fct_visits: no primary_key constraint",
    ]
