"""``ops.alert_log``: every alert sent, under a dedupe key, and what each channel did with it."""

from __future__ import annotations

import json
from typing import Any

import psycopg


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
