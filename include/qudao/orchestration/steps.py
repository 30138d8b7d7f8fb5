"""The work of the night's build, gate and publish steps, shared by the nightly tasks and
``qudao republish`` (no Airflow import: the CLI calls it too).

Each function takes the warehouse URL and a ``say`` callback for progress lines; the
tasks (:mod:`qudao.orchestration.tasks`) add their typed outcome and the exception
Airflow needs, :mod:`qudao.orchestration.republish` its quiet summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from qudao.warehouse.connection import connect

Say = Callable[[str], None]


def quiet(line: str) -> None:
    """A ``say`` that says nothing (``qudao republish`` prints its own summary)."""


def build_night(
    url: str, business_date: date, run_id: str, say: Say, *, log_dir: Path | None = None
) -> tuple[Any, Any, Any]:
    """``dbt build`` of the night as known now, its dbt tests recorded as checks of stage ``dbt``.

    A date older than the latest published night is rebuilt up to that night
    (:func:`qudao.publish.night_scope`). Returns ``(scope, dbt result, dbt tests as a gate)``.
    """
    from qudao.lineage.dbt_models import enabled as lineage_enabled
    from qudao.publish import night_scope
    from qudao.transform import build

    scope = night_scope(url, business_date)
    for line in scope.lines():
        say(line)
    say("dbt build (staging, dimensions, facts, marts, tests)")
    result = build(
        url, scope.run_date, start_date=scope.start_date, log_dir=log_dir, artifacts=lineage_enabled()
    )
    for line in result.lines():
        say(line)
    return scope, result, record_dbt_tests(url, business_date, run_id, result)


def record_dbt_tests(url: str, business_date: date, run_id: str, result: Any) -> Any:
    """The build's dbt tests as checks of stage ``dbt`` in ``ops.quality_results`` (with the gate's)."""
    from qudao.quality.results import CheckResult, GateResult, record

    gate = GateResult(run_id=run_id, business_date=business_date, stage="dbt")
    for t in result.tests:
        if t.status not in ("pass", "fail", "warn"):
            continue  # skipped after an upstream failure, or could not run (a dbt error)
        gate.results.append(
            CheckResult(
                "dbt",
                t.name,
                "warn" if t.status == "warn" else "error",
                t.status == "pass",
                observed=f"{t.failures} rows break it",
                expected="0 rows",
                detail=t.model or t.unique_id,
            )
        )
    for c in result.broken_constraints:  # PostgreSQL refused a model's rows: its contract's rule
        gate.results.append(
            CheckResult("dbt", c.name, "error", False, observed=c.message, expected="0 rows", detail=c.model)
        )
    if gate.results:
        with connect(url, autocommit=True) as conn:
            record(conn, gate)
    return gate


def gate_dates(
    url: str,
    business_date: date,
    dates: Sequence[date],
    run_id: str,
    stage: str,
    say: Say,
    *,
    manifest_path: Path | None = None,
) -> list[Any]:
    """The quality gate's ``stage`` on each of ``dates`` (the night's and those published with it)."""
    from qudao.quality.gate import run_gate

    out = []
    for d in dates:
        say("quality gate" + (f" of {d}" if d != business_date else ""))
        result = run_gate(url, d, run_id, stage=stage, manifest_path=manifest_path)
        for line in result.lines():
            say(line)
        out.append(result)
    return out


def publish_dates(url: str, dates: Sequence[date], run_id: str, manifest_path: Path | None, say: Say) -> Any:
    """Make the candidate marts of ``dates`` visible in ``marts`` in one transaction."""
    from qudao.publish import publish

    result = publish(url, list(dates), run_id, manifest_path)
    for line in result.lines():
        say(line)
    return result
