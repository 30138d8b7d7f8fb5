"""Ingestion: delivered extract files → ``raw`` tables, with manifest, rejects and drift.

Public API: :func:`load_date`, :func:`missing_entities`, :class:`LoadReport`, :class:`FileResult`.
"""

from __future__ import annotations

from qudao.ingest.landing import missing_entities
from qudao.ingest.loader import FileResult, LoadReport, load_date, load_file

__all__ = ["FileResult", "LoadReport", "load_date", "load_file", "missing_entities"]
