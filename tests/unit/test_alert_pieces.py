"""The pure pieces of an alert: classification, headline and steps, rendering."""

from __future__ import annotations

from datetime import date

from qudao.alerts.classify import failure_kind, missing_of, sources_of
from qudao.alerts.event import Event
from qudao.alerts.facts import NightFacts
from qudao.alerts.message import Alert
from qudao.alerts.prose import check_line, headline, plural, refused_line, todo
from qudao.ledger.outcomes import StepOutcome

NIGHT = date(2026, 11, 2)


def _event(outcome: StepOutcome | None = None, **kw: object) -> Event:
    return Event("task_failure", "channel_nightly", "r1", task_id="anything", outcome=outcome, **kw)


def test_the_kind_comes_from_the_outcome_never_the_task_id() -> None:
    load = StepOutcome("load_crm", "ingestion", NIGHT, "failed", ("crm",))
    assert failure_kind(_event(load)) == "ingestion"
    assert failure_kind(Event("task_failure", "d", "r", task_id="load_crm_extracts")) == "task"
    assert failure_kind(_event(None, error_kind="quality_gate")) == "quality_gate"
    assert failure_kind(Event("run_failure", "d", "r", outcome=load)) == "run"
    assert failure_kind(Event("deadline", "d", "r")) == "deadline"
    assert sources_of(_event(load)) == ["crm"]


def test_missing_extracts_and_their_landing_come_from_the_outcome() -> None:
    missing = StepOutcome(
        "wait_for_extracts",
        "extracts_missing",
        NIGHT,
        "failed",
        ("call_center", "crm"),
        ("call_center.calls", "crm.partners"),
        look=("/srv/landing",),
    )
    assert missing_of(_event(missing, conf={"landing": "/elsewhere"})) == (
        ["call_center.calls", "crm.partners"],
        "/srv/landing",
    )
    assert missing_of(_event(None, conf={"landing": "/elsewhere"})) == ([], "/elsewhere")


def test_headlines() -> None:
    checks = [
        {"severity": "error", "suite": "s", "check": "a", "observed": "1", "expected": "0"},
        {"severity": "warn", "suite": "s", "check": "b", "observed": "1", "expected": "0"},
        {"severity": "warn", "suite": "s", "check": "c", "observed": "1", "expected": "0"},
    ]
    facts = NightFacts(failed_checks=checks)
    assert (
        headline("quality_gate", [], [], facts)
        == "quality gate blocked publishing (1 failed check, 2 warnings)"
    )
    assert headline("ingestion", ["crm"], [], NightFacts()) == "loading crm extracts failed"
    assert headline("ingestion", [], [], NightFacts()) == "loading the extracts failed"
    assert headline("extracts_missing", [], ["crm.partners"], NightFacts()) == (
        "extracts missing at the deadline: crm.partners"
    )
    assert (plural(1, "error"), plural(0, "error")) == ("1 error", "0 errors")


def test_fact_lines() -> None:
    check = {"severity": "warn", "suite": "marts.x", "check": "band", "observed": "12", "expected": "40..60"}
    assert check_line(check) == "WARN [warn] marts.x :: band — observed 12, expected 40..60"
    over = {
        "source": "dealer_sales",
        "file": "orders.csv",
        "status": "loaded",
        "rows_in": 40,
        "rows_rejected": 40,
        "reject_share": 1.0,
        "reject_threshold": 0.05,
        "quarantined_to": None,
    }
    assert refused_line(over) == "dealer_sales/orders.csv: 40 of 40 rows rejected (100.0% > threshold 5.0%)"
    refused = {**over, "status": "refused", "error": "bad header", "quarantined_to": "/q/orders.csv"}
    assert refused_line(refused) == "dealer_sales/orders.csv: refused — bad header; moved to /q/orders.csv"


def test_what_to_do_about_missing_extracts_names_the_files_to_deliver() -> None:
    steps = todo("extracts_missing", _event(), "2026-11-02", ["crm.partners"], "/srv/landing", ["crm"])
    assert steps[0] == "Ask the owners of crm to deliver: /srv/landing/crm/2026-11-02/partners.*."
    assert (
        steps[1]
        == "When the files are there, clear wait_for_extracts for run r1 (or `qudao run --date 2026-11-02`)."
    )


def test_rendering() -> None:
    alert = Alert(
        kind="dbt",
        status="failure",
        dag_id="channel_nightly",
        run_id="r1",
        business_date=NIGHT,
        subject="[qudao] FAILED channel_nightly 2026-11-02: dbt build failed",
        what=["DAG channel_nightly", "", "Error:"],
        where=["Overview: qudao status"],
        todo=["Read the log.", "Fix it."],
    )
    assert alert.body() == (
        "[qudao] FAILED channel_nightly 2026-11-02: dbt build failed\n\n"
        "What happened\n  DAG channel_nightly\n\n  Error:\n\n"
        "Where to look\n  Overview: qudao status\n\n"
        "What to do\n  1. Read the log.\n  2. Fix it.\n"
    )
    payload = alert.webhook_payload()
    assert payload["text"] == alert.body()
    assert (payload["qudao"]["business_date"], payload["qudao"]["kind"]) == ("2026-11-02", "dbt")
