"""Check results: one shape for GX expectations and plain-SQL checks alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import psycopg

from qudao.ledger.gates import record_gate

Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of one suite for one night."""

    suite: str
    check_name: str
    severity: Severity
    passed: bool
    observed: str | None = None
    expected: str | None = None
    detail: str | None = None

    def line(self) -> str:
        mark = "ok  " if self.passed else ("FAIL" if self.severity == "error" else "WARN")
        text = f"{mark} [{self.severity}] {self.suite} :: {self.check_name}"
        if not self.passed:
            text += f" — observed {self.observed}, expected {self.expected}"
            if self.detail:
                text += f" ({self.detail})"
        return text


@dataclass
class GateResult:
    """All checks of one gate run; ``passed`` means no error-severity failure."""

    run_id: str
    business_date: date
    stage: str
    results: list[CheckResult] = field(default_factory=list)
    data_docs_path: Path | None = None

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        """Human-readable summary: verdict, then every failure and warning."""
        verdict = "PASSED" if self.passed else "FAILED"
        out = [
            f"quality gate {verdict} for {self.business_date} (stage {self.stage}, run {self.run_id}): "
            f"{len(self.results)} checks, {len(self.failures)} errors, {len(self.warnings)} warnings"
        ]
        out += [f"  {r.line()}" for r in self.failures + self.warnings]
        if self.data_docs_path:
            out.append(f"  data docs: {self.data_docs_path}")
        return out


def record(conn: psycopg.Connection, gate: GateResult) -> None:
    """Write every check result and the gate run's summary to the ledger (``ledger.gates``)."""
    docs = str(gate.data_docs_path) if gate.data_docs_path else None
    record_gate(conn, gate.run_id, gate.business_date, gate.stage, gate.results, docs)
