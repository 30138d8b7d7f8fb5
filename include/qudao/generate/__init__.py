"""Sample extracts: a simulated channel written to a landing zone exactly as the contracts say.

Public API: :func:`generate` and :class:`GenerateSummary` (see :mod:`qudao.generate.writer`).
"""

from __future__ import annotations

from qudao.generate.writer import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
