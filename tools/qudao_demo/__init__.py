"""Sample extracts: a simulated channel written to a landing zone exactly as the contracts say.

Part of the demo tools (``tools/``), never of the production package: ``qudao generate``
imports it when it is installed (``make install`` does). Public API: :func:`generate` and
:class:`GenerateSummary` (see :mod:`qudao_demo.writer`).
"""

from __future__ import annotations

from qudao_demo.writer import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
