"""What the ops tables say about a night, and the alert ledger ``ops.alert_log``.

Every query here is best effort: an alert about a broken warehouse must still go
out, so callers catch errors and send what they know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg


@dataclass
class NightFacts:
    """What the ops tables hold about one run / business date (empty when unknown)."""

    failed_checks: list[dict[str, Any]] = field(default_factory=list)  # error + warn, errors first
    checks_total: int | None = None
    data_docs: str | None = None
    refused_files: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)  # (entity, reason, rows) top reasons
    published: bool = False


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


def business_date_of_run(conn: psycopg.Connection, run_id: str) -> date | None:
    """The business date ``ops.run_log`` recorded for ``run_id``, if any."""
    if not _table_exists(conn, "ops.run_log"):
        return None
    row = conn.execute(
        "select business_date from ops.run_log where run_id = %s order by logged_at desc limit 1", (run_id,)
    ).fetchone()
    return row[0] if row else None


def night_facts(conn: psycopg.Connection, run_id: str, business_date: date | None) -> NightFacts:
    """Failed checks of ``run_id``'s gate, refused files and top reject reasons of the date."""
    facts = NightFacts()
    if _table_exists(conn, "ops.quality_results"):
        rows = conn.execute(
            "select suite, check_name, severity, observed, expected, detail from ops.quality_results"
            " where run_id = %s and not passed"
            " order by severity = 'warn', suite, check_name",
            (run_id,),
        ).fetchall()
        keys = ("suite", "check", "severity", "observed", "expected", "detail")
        facts.failed_checks = [dict(zip(keys, r, strict=True)) for r in rows]
        facts.checks_total = conn.execute(
            "select count(*) from ops.quality_results where run_id = %s", (run_id,)
        ).fetchone()[0]
    if _table_exists(conn, "ops.gate_runs"):
        row = conn.execute(
            "select data_docs_path from ops.gate_runs where run_id = %s and data_docs_path is not null"
            " order by finished_at desc limit 1",
            (run_id,),
        ).fetchone()
        facts.data_docs = row[0] if row else None
    if business_date is None:
        return facts
    if _table_exists(conn, "ops.load_manifest_current"):
        rows = conn.execute(
            "select source, entity, file_name, status, error, quarantined_to, rows_in, rows_rejected,"
            " reject_share, reject_threshold from ops.load_manifest_current"
            " where business_date = %s and (status = 'refused' or over_threshold)"
            " order by source, entity, load_id",
            (business_date,),
        ).fetchall()
        keys = (
            "source",
            "entity",
            "file",
            "status",
            "error",
            "quarantined_to",
            "rows_in",
            "rows_rejected",
            "reject_share",
            "reject_threshold",
        )
        facts.refused_files = [dict(zip(keys, r, strict=True)) for r in rows]
    if _table_exists(conn, "ops.rejected_rows"):
        rows = conn.execute(
            "select source || '.' || entity, reason, count(*) from ops.rejected_rows"
            " where business_date = %s group by 1, 2 order by 3 desc, 1, 2 limit 5",
            (business_date,),
        ).fetchall()
        facts.rejects = [{"entity": e, "reason": r, "rows": n} for e, r, n in rows]
    if _table_exists(conn, "ops.publish_log"):
        facts.published = bool(
            conn.execute(
                "select 1 from ops.publish_log where business_date = %s and status = 'published' limit 1",
                (business_date,),
            ).fetchone()
        )
    return facts


def claim(conn: psycopg.Connection, key: str, record: dict[str, Any]) -> bool:
    """Insert the alert's ledger row; False when ``key`` was already alerted (dedupe)."""
    row = conn.execute(
        "insert into ops.alert_log (dedupe_key, dag_id, run_id, task_id, try_number, business_date, kind,"
        " status, subject, message) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (dedupe_key) do nothing returning alert_id",
        (
            key,
            record["dag_id"],
            record["run_id"],
            record.get("task_id"),
            record.get("try_number"),
            record.get("business_date"),
            record["kind"],
            record["status"],
            record["subject"],
            json.dumps(record, default=str, ensure_ascii=False),
        ),
    ).fetchone()
    return row is not None


def record_delivery(conn: psycopg.Connection, key: str, channels: dict[str, str]) -> None:
    """Store what each channel did with the alert."""
    conn.execute("update ops.alert_log set channels = %s where dedupe_key = %s", (json.dumps(channels), key))


def run_already_alerted(
    conn: psycopg.Connection, dag_id: str, run_id: str, clear_number: int | None = None
) -> bool:
    """Whether a failure alert already went out for this DAG run (since its clear ``clear_number``)."""
    return bool(
        conn.execute(
            "select 1 from ops.alert_log where dag_id = %s and run_id = %s and status = 'failure'"
            " and (%s::int is null or coalesce((message->>'clear_number')::int, 0) >= %s::int) limit 1",
            (dag_id, run_id, clear_number, clear_number),
        ).fetchone()
    )


def open_failure(conn: psycopg.Connection, dag_id: str) -> dict[str, Any] | None:
    """The DAG's last failure alert if no recovery was announced after it."""
    row = conn.execute(
        "select status, run_id, business_date, kind, subject, created_at from ops.alert_log"
        " where dag_id = %s and status in ('failure', 'recovery') order by alert_id desc limit 1",
        (dag_id,),
    ).fetchone()
    if not row or row[0] != "failure":
        return None
    return dict(zip(("status", "run_id", "business_date", "kind", "subject", "at"), row, strict=True))
