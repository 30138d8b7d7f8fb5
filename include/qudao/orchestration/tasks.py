"""What each task of the nightly DAG does: one function per task.

The DAG file only wires these together. Every function takes plain values (the
business date, the landing zone, the run id), logs its step to ``ops.run_log``
and prints progress lines for ``qudao run``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from qudao.ledger.migrate import ensure_current
from qudao.orchestration.runner import progress
from qudao.warehouse.connection import connect, current_url


class GateFailed(AirflowFailException):
    """The night's quality gate found a blocking failure: nothing was published (no retry)."""


def log_step(run_id: str, business_date: date, step: str, status: str, detail: dict[str, Any]) -> None:
    """Append one row to ``ops.run_log``."""
    with connect() as conn:
        ensure_current(conn)
        conn.execute(
            "insert into ops.run_log (run_id, business_date, step, status, detail)"
            " values (%s, %s, %s, %s, %s)",
            (run_id, business_date, step, status, json.dumps(detail, default=str, ensure_ascii=False)),
        )


def load_source(source: str, business_date: date, landing: str, run_id: str) -> dict[str, Any]:
    """Load one source's files of the night into ``raw``."""
    from qudao.ingest import load_date

    def say(line: str) -> None:
        progress(f"{business_date}: {line}")

    report = load_date(current_url(), landing, business_date, sources=[source], progress=say)
    summary = {
        "files": len(report.files),
        "rows_loaded": sum(f.rows_loaded or 0 for f in report.files),
        "rows_rejected": sum(f.rows_rejected or 0 for f in report.files),
        "refused": [f.path for f in report.files if f.status == "refused"],
    }
    say(
        f"{source}: {summary['files']} files, {summary['rows_loaded']:,} rows loaded, "
        f"{summary['rows_rejected']:,} rejected, {len(summary['refused'])} refused"
    )
    log_step(run_id, business_date, f"load_{source}", "success" if report.ok else "refused_files", summary)
    return summary


def _scope(business_date: date, run_id: str) -> Any:
    """The :class:`qudao.publish.NightScope` that ``build_marts`` built for ``run_id``.

    A run whose build logged none (built before scopes were logged) is the night alone:
    :func:`qudao.publish.publish` refuses it if later nights are published.
    """
    from qudao.publish import NightScope

    with connect() as conn:
        row = conn.execute(
            "select detail -> 'scope' from ops.run_log where run_id = %s and business_date = %s"
            " and step = 'build_marts' and status = 'success' order by logged_at desc limit 1",
            (run_id, business_date),
        ).fetchone()
    if row is None or row[0] is None:
        return NightScope(business_date, business_date, (business_date,))
    return NightScope.from_dict(business_date, row[0])


def build_marts(business_date: date, run_id: str) -> dict[str, Any]:
    """``dbt build`` of the night into the candidate schema, as known now.

    A date older than the latest published night is rebuilt up to that night
    (:func:`qudao.publish.night_scope`); the scope is logged for the gate and publish.
    """
    from qudao.publish import night_scope
    from qudao.transform import build

    url = current_url()
    scope = night_scope(url, business_date)
    for line in scope.lines():
        progress(f"{business_date}: {line}")
    progress(f"{business_date}: dbt build (staging, dimensions, facts, marts, tests)")
    result = build(url, scope.run_date, start_date=scope.start_date)
    for line in result.lines():
        progress(f"{business_date}: {line}")
    detail = {**result.counts, "scope": scope.as_dict()}
    log_step(run_id, business_date, "build_marts", "success" if result.success else "failed", detail)
    tests = _record_dbt_tests(url, business_date, run_id, result)
    if result.only_tests_failed:  # the data broke a model's rules: a failed check, not a crash to retry
        raise GateFailed(
            "\n".join([*tests.lines(), *(f"  {r.line()}" for r in tests.failures), "nothing was published"])
        )
    if not result.success:
        raise RuntimeError("dbt build failed:\n" + "\n".join(result.failures))
    return result.counts


def _record_dbt_tests(url: str, business_date: date, run_id: str, result: Any) -> Any:
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
    if gate.results:
        with connect(url, autocommit=True) as conn:
            record(conn, gate)
    return gate


def check_raw_quality(business_date: date, run_id: str) -> dict[str, Any]:
    """The gate's raw stage on what the night loaded, before dbt runs; :class:`GateFailed` stops
    the night there (a refused file or a reject share over the threshold costs no build)."""
    from qudao.quality.gate import run_gate

    progress(f"{business_date}: quality gate on raw (before the build)")
    result = run_gate(current_url(), business_date, run_id, stage="raw")
    for line in result.lines():
        progress(f"{business_date}: {line}")
    summary = {"passed": result.passed, "failures": len(result.failures), "warnings": len(result.warnings)}
    log_step(run_id, business_date, "check_raw_quality", "passed" if result.passed else "failed", summary)
    if not result.passed:
        raise GateFailed("\n".join(result.lines()))
    return summary


def check_quality(business_date: date, run_id: str) -> dict[str, Any]:
    """The gate's candidate stage on every date the build rebuilt for publishing (the raw stage
    ran before the build); raise :class:`GateFailed` on a blocking failure."""
    from qudao.quality.gate import run_gate

    url = current_url()
    lines: list[str] = []
    summary: dict[str, Any] = {"passed": True, "failures": 0, "warnings": 0, "data_docs": ""}
    for d in _scope(business_date, run_id).dates:
        progress(f"{business_date}: quality gate" + (f" of {d}" if d != business_date else ""))
        result = run_gate(url, d, run_id, stage="candidate")
        for line in result.lines():
            progress(f"{business_date}: {line}")
        lines += result.lines()
        summary["passed"] = summary["passed"] and result.passed
        summary["failures"] += len(result.failures)
        summary["warnings"] += len(result.warnings)
        summary["data_docs"] = str(result.data_docs_path or "")
    log_step(run_id, business_date, "check_quality", "passed" if summary["passed"] else "failed", summary)
    if not summary["passed"]:
        raise GateFailed("\n".join(lines))
    return summary


def publish_marts(business_date: date, run_id: str) -> dict[str, Any]:
    """Make the night's candidate marts visible in ``marts``, all at once (with the
    published nights after it, when it is older than them)."""
    from qudao.publish import publish
    from qudao.transform import manifest_path

    dates = list(_scope(business_date, run_id).dates)
    result = publish(current_url(), dates, run_id, manifest_path())
    lines = result.lines() if hasattr(result, "lines") else [str(result)]
    for line in lines:
        progress(f"{business_date}: {line}")
    log_step(run_id, business_date, "publish_marts", "success", {"lines": lines})
    return {"lines": lines}


def report_run(business_date: date, run_id: str) -> dict[str, Any]:
    """Summarise the published night: rows per published table for that date."""
    from qudao.status import published_rows

    rows = published_rows(current_url(), business_date)
    for table, n in rows.items():
        progress(f"{business_date}: published marts.{table}: {n} rows for the night")
    log_step(run_id, business_date, "report_run", "success", rows)
    return rows


def check_published_by_deadline(business_date: date, deadline: Any) -> dict[str, Any]:
    """Alert and fail when ``business_date``'s marts were not published by ``deadline``."""
    from qudao.alerts import QudaoAlertNotifier

    with connect() as conn:
        ensure_current(conn)
        (published,) = conn.execute(
            "select exists (select 1 from ops.publish_log where status = 'published'"
            " and (business_date = %s or tables -> 'dates' ? %s))",
            (business_date, business_date.isoformat()),
        ).fetchone()
    if published:
        return {"business_date": str(business_date), "published": True}
    night = {"dag_id": "channel_nightly", "conf": {"business_date": business_date.isoformat()}}
    QudaoAlertNotifier().notify(
        {
            "deadline": {"deadline_time": str(deadline)},
            "dag": {"dag_id": "channel_nightly"},
            "dag_run": night,
            "run_id": f"deadline__{business_date.isoformat()}",
        }
    )
    raise AirflowFailException(f"marts of business date {business_date} not published by {deadline}")
