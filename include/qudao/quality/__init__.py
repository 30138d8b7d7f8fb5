"""Data quality: expectation suites, the nightly gate, results in ``ops.quality_results``.

``run_gate`` lives in :mod:`qudao.quality.gate`; Great Expectations is imported only
when a gate actually runs.
"""

from __future__ import annotations

from qudao.quality.results import CheckResult, GateResult

__all__ = ["CheckResult", "GateResult"]
