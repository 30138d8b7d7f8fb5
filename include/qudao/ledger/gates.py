"""``ops.gate_runs`` and ``ops.quality_results``: every gate run and each of its checks."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

import psycopg

from qudao.ledger.migrate import ensure_current


class Check(Protocol):
    """One check's result, as :class:`qudao.quality.results.CheckResult` has it."""

    suite: str
    check_name: str
    severity: str
    passed: bool
    observed: str | None
    expected: str | None
    detail: str | None


def record_gate(
    conn: psycopg.Connection,
    run_id: str,
    business_date: date,
    stage: str,
    results: list[Check],
    data_docs_path: str | None,
) -> None:
    """Write every check to ``ops.quality_results`` and the run's summary to ``ops.gate_runs``."""
    ensure_current(conn)
    errors = sum(1 for r in results if not r.passed and r.severity == "error")
    warnings = sum(1 for r in results if not r.passed and r.severity == "warn")
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into ops.quality_results (run_id, business_date, suite, check_name, severity, passed,"
            " observed, expected, detail) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    run_id,
                    business_date,
                    r.suite,
                    r.check_name,
                    r.severity,
                    r.passed,
                    r.observed,
                    r.expected,
                    r.detail,
                )
                for r in results
            ],
        )
        cur.execute(
            "insert into ops.gate_runs (run_id, business_date, stage, passed, checks, errors, warnings,"
            " data_docs_path) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, business_date, stage, errors == 0, len(results), errors, warnings, data_docs_path),
        )


def gate_problems(conn: psycopg.Connection, run_id: str, dates: list[date]) -> tuple[str, list[str]]:
    """Why ``run_id`` may not publish ``dates`` ('' when it may) and its error failures.

    Per date, the latest gate run of each stage counts (a gate re-run after a fix
    replaces the earlier verdict; a full ``all`` run replaces earlier partial ones);
    one of them must have checked the candidate marts.
    """
    latest = conn.execute(
        "select distinct on (business_date, stage) business_date, stage, passed, finished_at"
        " from ops.gate_runs where run_id = %s and business_date = any(%s)"
        " order by business_date, stage, finished_at desc",
        (run_id, dates),
    ).fetchall()
    full = {d: at for d, stage, _, at in latest if stage == "all"}
    latest = [r for r in latest if r[1] == "all" or r[0] not in full or r[3] > full[r[0]]]
    checked = {d for d, stage, _, _ in latest if stage in ("candidate", "all")}
    unchecked = [d for d in dates if d not in checked]
    failures = [
        r[0]
        for d, stage, passed, finished_at in latest
        if not passed
        for r in conn.execute(
            "select suite || ' :: ' || check_name || ' — observed ' || coalesce(observed, '?')"
            " from ops.quality_results where run_id = %s and business_date = %s and checked_at = %s"
            " and severity = 'error' and not passed order by suite, check_name",
            (run_id, d, finished_at),
        ).fetchall()
    ]
    failed_gates = [f"{d} ({stage})" for d, stage, passed, _ in latest if not passed]
    if failed_gates:
        return (
            f"quality gate failed for run {run_id} on {', '.join(failed_gates)}:"
            f" {len(failures)} error checks",
            failures,
        )
    if unchecked:
        return (
            f"no quality gate results of the candidate marts for run {run_id} on "
            f"{', '.join(map(str, unchecked))}",
            [],
        )
    return "", []


def failed_checks(conn: psycopg.Connection, run_id: str) -> tuple[list[dict[str, Any]], int]:
    """The run's failed checks (errors first) as dicts, and how many checks it ran."""
    rows = conn.execute(
        "select suite, check_name, severity, observed, expected, detail from ops.quality_results"
        " where run_id = %s and not passed order by severity = 'warn', suite, check_name",
        (run_id,),
    ).fetchall()
    keys = ("suite", "check", "severity", "observed", "expected", "detail")
    total = conn.execute("select count(*) from ops.quality_results where run_id = %s", (run_id,)).fetchone()[
        0
    ]
    return [dict(zip(keys, r, strict=True)) for r in rows], total


def latest_data_docs(conn: psycopg.Connection, run_id: str) -> str | None:
    """The Data Docs page of the run's latest gate run that wrote one."""
    row = conn.execute(
        "select data_docs_path from ops.gate_runs where run_id = %s and data_docs_path is not null"
        " order by finished_at desc limit 1",
        (run_id,),
    ).fetchone()
    return row[0] if row else None


def recent_gates(conn: psycopg.Connection, limit: int = 3) -> list[tuple]:
    """``(business_date, stage, outcome, errors, warnings, checks, finished, data_docs)``, newest first."""
    return conn.execute(
        """
        select business_date, stage, case when passed then 'passed' else 'FAILED' end,
               errors, warnings, checks, finished_at::timestamp(0), data_docs_path
        from ops.gate_runs order by finished_at desc limit %s
        """,
        (limit,),
    ).fetchall()


def where_to_look(run_id: str) -> str:
    """The query that lists ``run_id``'s failed checks (for people: alerts print it)."""
    return (
        "select suite, check_name, severity, observed, expected, detail from ops.quality_results"
        f" where run_id = '{run_id}' and not passed"
    )
