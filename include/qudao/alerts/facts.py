"""What the ledger says about a night, for an alert: failed checks, refused files, rejects.

Every read is best effort: an alert about a broken warehouse must still go out, so
callers catch errors and send what they know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from qudao.ledger import gates, manifest, publishes


@dataclass
class NightFacts:
    """What the ops tables hold about one run / business date (empty when unknown)."""

    failed_checks: list[dict[str, Any]] = field(default_factory=list)  # error + warn, errors first
    checks_total: int | None = None
    data_docs: str | None = None
    refused_files: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # (entity, reason, rows) top reasons
    published: bool = False


def night_facts(conn: psycopg.Connection, run_id: str, business_date: date | None) -> NightFacts:
    """Failed checks of ``run_id``'s gate, refused files and top reject reasons of the date."""
    facts = NightFacts()
    facts.failed_checks, facts.checks_total = gates.failed_checks(conn, run_id)
    facts.data_docs = gates.latest_data_docs(conn, run_id)
    if business_date is None:
        return facts
    facts.refused_files = manifest.refused_files(conn, business_date)
    facts.rejects = manifest.top_rejects(conn, business_date)
    facts.published = publishes.ever_published(conn, business_date)
    return facts
