"""The typed step outcome: its kinds, and the one line people read."""

from __future__ import annotations

from datetime import date

import pytest

from qudao.ledger.outcomes import KINDS, StepOutcome
from qudao.orchestration.failures import ExtractsMissing, GateFailed, NotPublished, StepError, with_outcome
from qudao.orchestration.runner import NightResult

NIGHT = date(2026, 11, 2)


def test_a_failed_outcome_reads_as_one_line() -> None:
    gate = StepOutcome("check_quality", "quality_gate", NIGHT, "failed", failed=("a", "b", "c", "d", "e"))
    assert gate.line() == "check_quality failed: quality_gate — a; b; c … 2 more"
    load = StepOutcome("load_crm", "ingestion", NIGHT, "failed", ("crm",), ("OSError: disk full",))
    assert load.line() == "load_crm failed: ingestion (crm) — OSError: disk full"
    assert StepOutcome("report_run", "ok", NIGHT).line() == "report_run success"
    assert not gate.ok and StepOutcome("report_run", "ok", NIGHT).ok


def test_an_unknown_kind_is_refused() -> None:
    assert KINDS == (
        "ok",
        "extracts_missing",
        "ingestion",
        "quality_gate",
        "dbt",
        "publish",
        "deadline",
        "task",
    )
    with pytest.raises(ValueError, match="unknown step outcome kind 'load'"):
        StepOutcome("load_crm", "load", NIGHT)


def test_failures_carry_their_kind_with_or_without_an_outcome() -> None:
    assert (GateFailed("x").kind, ExtractsMissing("x").kind, NotPublished("x").kind) == (
        "quality_gate",
        "extracts_missing",
        "deadline",
    )
    dbt = StepOutcome("build_marts", "dbt", NIGHT, "failed")
    error = StepError("dbt build failed", dbt)
    assert (error.kind, error.outcome, str(error)) == ("dbt", dbt, "dbt build failed")
    assert isinstance(error, RuntimeError)  # retried, unlike the AirflowFailException ones
    crash = with_outcome(OSError("disk full"), dbt)
    assert isinstance(crash, OSError) and crash.outcome is dbt  # type: ignore[attr-defined]


def test_qudao_run_says_why_a_night_failed_from_its_outcome() -> None:
    missing = StepOutcome(
        "wait_for_extracts",
        "extracts_missing",
        NIGHT,
        "failed",
        ("call_center",),
        ("call_center.calls",),
        message="extracts for business date 2026-11-02 incomplete at the deadline: missing call_center.calls",
    )
    night = NightResult(NIGHT, "failed", "r1", ["wait_for_extracts"], failure=missing)
    assert night.why() == [
        "wait_for_extracts failed: extracts_missing (call_center) — call_center.calls",
        "extracts for business date 2026-11-02 incomplete at the deadline: missing call_center.calls",
    ]
    assert NightResult(NIGHT, "success", "r2").why() == []
