"""What each task of the nightly DAG does: one function per task.

The DAG file only wires these together. Every function takes plain values (the
business date, the landing zone, the run id), records one typed outcome of its step
in the ledger (:mod:`qudao.ledger.outcomes`) and prints progress lines for ``qudao run``.
A failure raises a :mod:`qudao.orchestration.failures` exception carrying the outcome;
any other exception gets its outcome from :func:`step` (the kind the step declares),
so an alert knows what failed and whose it is without reading the task id.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from qudao.config import settings
from qudao.contracts import entity
from qudao.ledger import outcomes, publishes, runs
from qudao.ledger.migrate import ensure_current
from qudao.ledger.outcomes import StepOutcome
from qudao.lineage.collect import record_load, record_publish
from qudao.lineage.dbt_models import emit_for_running_task
from qudao.orchestration import steps
from qudao.orchestration.failures import GateFailed, NotPublished, StepError, StepFailed, with_outcome
from qudao.orchestration.runner import progress
from qudao.warehouse.connection import connect, current_url

__all__ = ["AirflowFailException", "GateFailed", "StepOutcome", "step"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def record(run_id: str | None, outcome: StepOutcome) -> None:
    """Write the step's outcome to the ledger (best effort for a failure: the raise matters more)."""
    if run_id is None:
        return
    try:
        with connect() as conn:
            outcomes.record(conn, run_id, outcome)
    except Exception:
        if outcome.ok:
            raise
        log.exception("could not record the outcome of %s in the ledger", outcome.step)


def step(kind: str) -> Callable[[F], F]:
    """Declare what a failure of the step is about (``ingestion``, ``dbt``, ``publish`` …).

    An exception the step did not turn into a :class:`StepFailed` is recorded as a failed
    outcome of that kind (with the step's source, if it has one) and re-raised unchanged
    but for the outcome attached to it.
    """

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except StepFailed:
                raise  # the step recorded its outcome
            except Exception as exc:
                given = signature.bind(*args, **kwargs).arguments
                source = given.get("source")
                outcome = StepOutcome(
                    step=f"load_{source}" if source else fn.__name__,
                    kind=kind,
                    business_date=given.get("business_date"),
                    status="failed",
                    sources=(source,) if source else (),
                    failed=(f"{type(exc).__name__}: {exc}"[:1000],),
                    message=str(exc)[:4000],
                )
                record(given.get("run_id"), outcome)
                with_outcome(exc, outcome)
                raise

        return run  # type: ignore[return-value]

    return wrap


@step("ingestion")
def load_source(source: str, business_date: date, landing: str, run_id: str) -> dict[str, Any]:
    """Load one source's files of the night into ``raw``."""
    from qudao.ingest import load_date

    def say(line: str) -> None:
        progress(f"{business_date}: {line}")

    url = current_url()
    report = load_date(url, landing, business_date, sources=[source], progress=say)
    record_load(url, report.files)  # OpenLineage: landing files in, raw tables out
    refused = [f.path for f in report.files if f.status == "refused"]
    by_table: Counter[str] = Counter()
    for f in report.files:
        by_table[entity(f.qualified).raw_table] += f.rows_loaded or 0
    summary = {
        "files": len(report.files),
        "rows_loaded": sum(f.rows_loaded or 0 for f in report.files),
        "rows_rejected": sum(f.rows_rejected or 0 for f in report.files),
        "refused": refused,
        "rows_loaded_by_table": dict(by_table),
    }
    say(
        f"{source}: {summary['files']} files, {summary['rows_loaded']:,} rows loaded, "
        f"{summary['rows_rejected']:,} rejected, {len(refused)} refused"
    )
    # refused files are the raw gate's to fail on: the load itself did its job
    status = "success" if report.ok else "refused_files"
    failed = tuple(str(p) for p in refused)
    record(run_id, StepOutcome(f"load_{source}", "ok", business_date, status, (source,), failed, summary))
    return summary


def _say(business_date: date) -> steps.Say:
    """Progress lines of the night's steps, as ``qudao run`` shows them."""
    return lambda line: progress(f"{business_date}: {line}")


def _scope(business_date: date, run_id: str) -> Any:
    """The :class:`qudao.publish.NightScope` that ``build_marts`` built for ``run_id``.

    A run whose build logged none (built before scopes were logged) is the night alone:
    :func:`qudao.publish.publish` refuses it if later nights are published.
    """
    from qudao.publish import NightScope

    with connect() as conn:
        scope = runs.step_detail(conn, run_id, business_date, "build_marts", "scope")
    if scope is None:
        return NightScope(business_date, business_date, (business_date,))
    return NightScope.from_dict(business_date, scope)


@step("dbt")
def build_marts(business_date: date, run_id: str) -> dict[str, Any]:
    """``dbt build`` of the night into the candidate schema, as known now.

    A date older than the latest published night is rebuilt up to that night
    (:func:`qudao.publish.night_scope`); the scope is logged for the gate and publish.
    """
    url = current_url()
    scope, result, tests = steps.build_night(url, business_date, run_id, _say(business_date))
    emit_for_running_task(url, settings().dbt_project_dir)  # OpenLineage: an event pair per dbt node
    detail = {**result.counts, "scope": scope.as_dict()}
    if result.only_rules_broken:  # the data broke a model's rules: a failed check, not a crash to retry
        message = "\n".join(
            [*tests.lines(), *(f"  {r.line()}" for r in tests.failures), "nothing was published"]
        )
        failed = tuple(f"{r.suite} :: {r.check_name}" for r in tests.failures)
        outcome = StepOutcome("build_marts", "quality_gate", business_date, "failed", (), failed, detail)
        record(run_id, outcome)
        raise GateFailed(message, outcome)
    if not result.success:
        outcome = StepOutcome(
            "build_marts", "dbt", business_date, "failed", (), tuple(result.failures), detail
        )
        record(run_id, outcome)
        raise StepError("dbt build failed:\n" + "\n".join(result.failures), outcome)
    record(run_id, StepOutcome("build_marts", "ok", business_date, "success", counts=detail))
    return result.counts


def _gate_outcome(
    step_name: str, business_date: date, gates: list[Any], summary: dict[str, Any]
) -> StepOutcome:
    """The outcome of a gate step: passed, or ``quality_gate`` naming every error check."""
    failed = tuple(f"{g.business_date} {r.suite} :: {r.check_name}" for g in gates for r in g.failures)
    passed = not failed
    look = tuple(str(g.data_docs_path) for g in gates if g.data_docs_path)
    kind = "ok" if passed else "quality_gate"
    return StepOutcome(
        step_name, kind, business_date, "passed" if passed else "failed", (), failed, summary, look
    )


@step("quality_gate")
def check_raw_quality(business_date: date, run_id: str) -> dict[str, Any]:
    """The gate's raw stage on what the night loaded, before dbt runs; :class:`GateFailed` stops
    the night there (a refused file or a reject share over the threshold costs no build)."""
    from qudao.quality.gate import run_gate

    progress(f"{business_date}: quality gate on raw (before the build)")
    result = run_gate(current_url(), business_date, run_id, stage="raw")
    for line in result.lines():
        progress(f"{business_date}: {line}")
    summary = {"passed": result.passed, "failures": len(result.failures), "warnings": len(result.warnings)}
    outcome = _gate_outcome("check_raw_quality", business_date, [result], summary)
    record(run_id, outcome)
    if not result.passed:
        raise GateFailed("\n".join(result.lines()), outcome)
    return summary


@step("quality_gate")
def check_quality(business_date: date, run_id: str) -> dict[str, Any]:
    """The gate's candidate stage on every date the build rebuilt for publishing (the raw stage
    ran before the build); raise :class:`GateFailed` on a blocking failure."""
    dates = _scope(business_date, run_id).dates
    gates = steps.gate_dates(current_url(), business_date, dates, run_id, "candidate", _say(business_date))
    lines = [line for g in gates for line in g.lines()]
    summary: dict[str, Any] = {
        "passed": all(g.passed for g in gates),
        "failures": sum(len(g.failures) for g in gates),
        "warnings": sum(len(g.warnings) for g in gates),
        "data_docs": str(gates[-1].data_docs_path or "") if gates else "",
    }
    outcome = _gate_outcome("check_quality", business_date, gates, summary)
    record(run_id, outcome)
    if not summary["passed"]:
        raise GateFailed("\n".join(lines), outcome)
    return summary


@step("publish")
def publish_marts(business_date: date, run_id: str) -> dict[str, Any]:
    """Make the night's candidate marts visible in ``marts``, all at once (with the
    published nights after it, when it is older than them)."""
    from qudao.transform import manifest_path

    dates = _scope(business_date, run_id).dates
    url = current_url()
    result = steps.publish_dates(url, dates, run_id, manifest_path(), _say(business_date))
    record_publish(url, result.tables)  # OpenLineage: marts_candidate in, marts out
    lines = result.lines()
    counts = {"lines": lines, "publish_id": result.publish_id, "tables": len(result.tables)}
    record(run_id, StepOutcome("publish_marts", "ok", business_date, "success", counts=counts))
    return {"lines": lines}


@step("task")
def report_run(business_date: date, run_id: str) -> dict[str, Any]:
    """Summarise the published night: rows per published table for that date."""
    from qudao.status import published_rows

    rows = published_rows(current_url(), business_date)
    for table, n in rows.items():
        progress(f"{business_date}: published marts.{table}: {n} rows for the night")
    record(run_id, StepOutcome("report_run", "ok", business_date, "success", counts=rows))
    return rows


def check_published_by_deadline(
    business_date: date, deadline: Any, run_id: str | None = None
) -> dict[str, Any]:
    """Raise :class:`NotPublished` when ``business_date``'s marts were not published by ``deadline``.

    The DAG's failure callback sends the alert, like every other failure.
    """
    with connect() as conn:
        ensure_current(conn)  # a warehouse nothing ran on yet has published nothing
        published = publishes.is_published(conn, business_date)
    if published:
        return {"business_date": str(business_date), "published": True}
    message = f"marts of business date {business_date} not published by {deadline}"
    outcome = StepOutcome(
        "check_marts_published",
        "deadline",
        business_date,
        "failed",
        failed=(message,),
        counts={"deadline": str(deadline)},
        message=message,
    )
    record(run_id, outcome)
    raise NotPublished(message, outcome)
