"""The suite files under ``expectations/``: valid for Great Expectations, in sync with the contracts."""

from __future__ import annotations

import json

import pytest

from qudao.contracts import ENTITIES
from qudao.quality.suites import EXPECTATIONS_DIR, load_suites, raw_suite

pytestmark = pytest.mark.integration

MARTS = {
    "mart_channel_coverage",
    "mart_channel_coverage_province",
    "mart_active_second_tier_agents",
    "fct_agent_activity",
    "mart_dealer_inventory_health",
    "mart_visit_compliance",
    "mart_callback_compliance",
    "mart_channel_filing_funnel",
}


def test_every_raw_entity_and_mart_has_a_suite() -> None:
    assert {s.table for s in load_suites(stage="raw")} == {f"raw.{e.raw_table}" for e in ENTITIES}
    assert {s.table for s in load_suites(stage="candidate")} == MARTS


def test_raw_suites_are_generated_from_the_contracts() -> None:
    for e in ENTITIES:
        path = EXPECTATIONS_DIR / "raw" / f"{e.raw_table}.json"
        assert json.loads(path.read_text(encoding="utf-8")) == raw_suite(e), (
            f"{path.name} is stale: python -m qudao.quality.suites"
        )


def test_every_expectation_is_one_great_expectations_can_run() -> None:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for suite in load_suites():
        for exp in suite.expectations:
            assert exp["meta"]["severity"] in ("error", "warn")
            ExpectationConfiguration(**exp).to_domain_obj()  # raises on an unknown type or bad kwargs
