"""What a night's build reads, as one fingerprint: a night whose inputs did not change is skipped.

A night D builds from every current load of a business date up to D and from the
project's rules (dbt models, macros, seeds, vars, the quality suites). Publishing
records each published date's fingerprint in ``ops.publish_log.inputs``; ``qudao run``
skips a night whose delivered files are all loaded already and whose fingerprint is
the one recorded by the publish of that date still in force (``--force`` rebuilds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from qudao.config import PROJECT_ROOT, settings
from qudao.ledger import manifest, publishes

#: what of the project decides a night's marts: a change here rebuilds every night
RULE_FILES: tuple[str, ...] = ("models", "macros", "seeds", "tests", "dbt_project.yml")


def _files(roots: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.is_dir():
            out.extend(p for p in root.rglob("*") if p.is_file())
    return sorted(out)


def rules_checksum() -> str:
    """sha256 over the dbt project's rule files and the quality suites, names and bytes."""
    project = settings().dbt_project_dir
    roots = [project / name for name in RULE_FILES] + [PROJECT_ROOT / "expectations"]
    digest = hashlib.sha256()
    for path in _files(roots):
        digest.update(str(path.relative_to(path.anchor)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def inputs_fingerprint(conn: psycopg.Connection, business_date: date) -> str:
    """sha256 over the current loads of dates up to ``business_date`` and :func:`rules_checksum`."""
    digest = hashlib.sha256(rules_checksum().encode())
    for row in manifest.current_loads_upto(conn, business_date):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def _delivered_known(conn: psycopg.Connection, landing: str, business_date: date) -> bool:
    """Is every file delivered for the date already in the manifest, with the same bytes?"""
    from qudao.ingest.landing import delivered_files, landing_exists
    from qudao.ingest.prescan import prescan

    if not landing_exists(landing):
        return False
    for entity, path in delivered_files(landing, business_date):
        sha = prescan(path, text=False).sha256
        if not manifest.is_loaded(conn, entity.source, entity.name, business_date, sha):
            return False
    return True


def fingerprints(conn: psycopg.Connection, business_dates: Iterable[date]) -> dict[str, str]:
    """``{date: fingerprint}`` for the dates a publish makes visible (``ops.publish_log.inputs``)."""
    return {d.isoformat(): inputs_fingerprint(conn, d) for d in business_dates}


def unchanged_since_published(url: str, landing: str, business_date: date) -> str | None:
    """Why the night need not run again (one line), or None when it must run.

    It need not when the latest publish of the date is still in force (not rolled back),
    recorded the fingerprint the date has now, and every file in its landing folder is
    loaded already.
    """
    from qudao.warehouse.schema import ensure_schema

    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        last = publishes.last_of_date(conn, business_date)
        if last is None or last[2] != "published" or last[1] is None:
            return None
        if not _delivered_known(conn, landing, business_date):
            return None
        if inputs_fingerprint(conn, business_date) != last[1]:
            return None
    when = last[0].astimezone(ZoneInfo(settings().timezone)).strftime("%Y-%m-%d %H:%M")
    return f"nothing changed since it was published at {when} (qudao run --force rebuilds it)"
