"""``qudao republish``: after a data fix, rebuild a date's marts, gate them again and publish.

It runs the night's own steps (:mod:`qudao.orchestration.steps`, what the nightly tasks
run), quietly, with the gate's ``all`` stage per date, and sums them up in a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from qudao.ledger import publishes
from qudao.orchestration import steps
from qudao.publish import NightScope, PublishRefused, PublishResult, night_scope

#: error failures a republish summary lists per gate (the rest: ops.quality_results)
SUMMARY_FAILURES = 10


@dataclass
class RepublishResult:
    """Outcome of :func:`republish`: rebuilt, gated, and published or refused."""

    business_date: date
    run_id: str
    published: bool
    reason: str = ""
    scope: NightScope | None = None
    build_lines: list[str] = field(default_factory=list)
    dbt_log: Path | None = None
    gates: list[Any] = field(default_factory=list)  # qudao.quality.results.GateResult, one per date
    publish: PublishResult | None = None

    def lines(self) -> list[str]:
        """A short summary: what was rebuilt, the gate's verdict per date, what was published."""
        out = [f"republish {self.business_date} (run {self.run_id})"]
        if self.scope is not None and self.build_lines:
            out += [f"  {line}" for line in self.scope.lines() or [f"rebuilt {self.business_date}"]]
        out += [f"  {line}" for line in self.build_lines]
        if self.dbt_log is not None:
            out.append(f"  dbt log: {self.dbt_log}")
        for gate in self.gates:
            verdict = "PASSED" if gate.passed else "FAILED"
            out.append(
                f"  quality gate {gate.business_date}: {verdict} ({len(gate.results)} checks,"
                f" {len(gate.failures)} errors, {len(gate.warnings)} warnings)"
            )
            out += [f"    {r.line()}" for r in gate.failures[:SUMMARY_FAILURES]]
            if len(gate.failures) > SUMMARY_FAILURES:
                out.append(f"    … {len(gate.failures) - SUMMARY_FAILURES} more in ops.quality_results")
        if self.gates and self.gates[-1].data_docs_path:
            out.append(f"  data docs: {self.gates[-1].data_docs_path}")
        if self.publish:
            p = self.publish
            deleted = sum(t["rows_deleted"] for t in p.tables.values())
            inserted = sum(t["rows_inserted"] for t in p.tables.values())
            out.append(
                f"  published {', '.join(map(str, p.business_dates))} (publish {p.publish_id}):"
                f" {len(p.tables)} marts tables, -{deleted:,} +{inserted:,} rows"
            )
        else:
            out.append(f"  NOT published: {self.reason}")
        return out


def _log_refused(url: str, run_id: str, business_date: date, reason: str, failures: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        publishes.log_publish(
            conn, run_id, business_date, "refused", {"reason": reason, "failures": failures[:50]}
        )


def republish(
    url: str,
    business_date: date,
    manifest_path: Path | None = None,
    *,
    rebuild: bool = True,
    log_dir: Path | None = None,
) -> RepublishResult:
    """After data of ``business_date`` was fixed: rebuild its marts, re-run the gate, publish.

    Nothing is reloaded: ``raw`` is used as it is now (corrected files loaded with
    ``qudao load`` replace the earlier delivery). What is rebuilt, gated and published
    is :func:`night_scope`'s: a date older than the latest published night is rebuilt up
    to that night and published with the nights after it. ``rebuild=False`` skips
    ``dbt build``; ``log_dir`` receives dbt's log (``dbt.log``) instead of the console.
    Returns a refused result (and logs ``refused``) when dbt or the gate fails.
    """
    run_id = f"republish__{business_date.isoformat()}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    scope = night_scope(url, business_date)
    out = RepublishResult(business_date, run_id, published=False, scope=scope)
    if rebuild:
        scope, built, _ = steps.build_night(url, business_date, run_id, steps.quiet, log_dir=log_dir)
        out.scope = scope
        out.build_lines = built.lines()
        out.dbt_log = log_dir / "dbt.log" if log_dir is not None else None
        if not built.success:
            out.reason = "dbt build failed"
            _log_refused(url, run_id, business_date, out.reason, built.failures)
            return out
    out.gates = steps.gate_dates(
        url, business_date, scope.dates, run_id, "all", steps.quiet, manifest_path=manifest_path
    )
    failures = [r for gate in out.gates for r in gate.failures]
    if failures:
        failed = ", ".join(str(g.business_date) for g in out.gates if not g.passed)
        out.reason = f"quality gate failed on {failed}: {len(failures)} error checks"
        _log_refused(url, run_id, business_date, out.reason, [r.line() for r in failures])
        return out
    try:
        out.publish = steps.publish_dates(url, scope.dates, run_id, manifest_path, steps.quiet)
    except PublishRefused as exc:  # e.g. a later night was published meanwhile (logged by publish)
        out.reason = str(exc)
        return out
    out.published = True
    return out
