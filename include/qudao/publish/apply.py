"""Apply: make the candidate marts of some dates visible in ``marts``, in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import qudao.publish as package
from qudao.constants import CANDIDATE_SCHEMA, PUBLISHED_SCHEMA
from qudao.ledger import gates, publishes
from qudao.ledger.migrate import ensure_current
from qudao.night_inputs import fingerprints
from qudao.publish.scope import published_nights
from qudao.publish.tables import columns, ensure_published_table, ident
from qudao.quality.manifest import CandidateModel, candidate_models

log = logging.getLogger("qudao.publish")


class PublishRefused(RuntimeError):
    """Publishing was refused: the gate has error failures (or never ran) for the run, or
    nights published after the dates are left out."""

    def __init__(self, message: str, failures: list[str] | None = None, gate: Any = None):
        super().__init__(message)
        self.failures = failures or []
        self.gate = gate


@dataclass
class PublishResult:
    """What one publish did."""

    publish_id: int
    run_id: str
    business_dates: list[date]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "published"

    def lines(self) -> list[str]:
        out = [
            f"published {', '.join(map(str, self.business_dates))}"
            f" (publish {self.publish_id}, run {self.run_id})"
        ]
        for name, t in sorted(self.tables.items()):
            out.append(f"  marts.{name}: -{t['rows_deleted']} +{t['rows_inserted']} ({t['mode']})")
        return out


def _apply(
    conn: psycopg.Connection, publish_id: int, model: CandidateModel, dates: list[date]
) -> dict[str, Any]:
    table = model.name
    if conn.execute("select to_regclass(%s) is null", (f"{CANDIDATE_SCHEMA}.{table}",)).fetchone()[0]:
        raise RuntimeError(f"{CANDIDATE_SCHEMA}.{table} does not exist: was dbt run?")
    created = ensure_published_table(conn, table)
    pub_cols = [c for c, _ in columns(conn, PUBLISHED_SCHEMA, table)]
    cand_cols = {c for c, _ in columns(conn, CANDIDATE_SCHEMA, table)}
    lost = [c for c in pub_cols if c not in cand_cols]
    if lost:
        raise RuntimeError(f"{CANDIDATE_SCHEMA}.{table} lacks published columns {lost}: a breaking change")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in pub_cols)
    pub, cand = ident(PUBLISHED_SCHEMA, table), ident(CANDIDATE_SCHEMA, table)
    if model.changed_column and not created and model.changed_column in cand_cols:
        filled = conn.execute(
            sql.SQL("select not exists (select from {} where {} is null)").format(
                pub, sql.Identifier(model.changed_column)
            )
        ).fetchone()[0]
        if filled:  # else the column was just added to an older table: replace it whole once
            return _apply_keys(conn, publish_id, model, dates, pub, cand, cols)
    if not model.date_column and not created and _same_rows(conn, pub, cand, cols):
        # a table replaced whole that the night left as it was (a calendar, an unchanged
        # dimension): nothing to back up, delete or insert; a rollback leaves it alone
        return {
            "mode": UNCHANGED,
            "date_column": None,
            "keys": [],
            "rows_deleted": 0,
            "rows_inserted": 0,
            "created": False,
        }
    keys = model.keys_for(dates) if model.date_column else []
    where = (
        sql.SQL(" where {} = any(%s)").format(sql.Identifier(model.date_column))
        if model.date_column
        else sql.SQL("")
    )
    params: tuple[Any, ...] = (keys,) if model.date_column else ()
    publishes.backup(conn, publish_id, table, sql.SQL("select * from {}").format(pub) + where, params)
    deleted = conn.execute(sql.SQL("delete from {}").format(pub) + where, params).rowcount
    inserted = conn.execute(
        sql.SQL("insert into {} ({}) select {} from {}").format(pub, cols, cols, cand) + where, params
    ).rowcount
    return {
        "mode": "dates" if model.date_column else "whole",
        "date_column": model.date_column,
        "keys": [k.isoformat() for k in keys],
        "rows_deleted": deleted,
        "rows_inserted": inserted,
        "created": created,
    }


#: the mode of a table replaced whole whose candidate holds exactly its published rows
UNCHANGED = "unchanged"


def _same_rows(
    conn: psycopg.Connection, pub: sql.Composable, cand: sql.Composable, cols: sql.Composable
) -> bool:
    """The candidate holds exactly the published rows (the same multiset, on the published columns)."""
    query = sql.SQL(
        "select not exists (select {c} from {a} except all select {c} from {b})"
        " and not exists (select {c} from {b} except all select {c} from {a})"
    ).format(c=cols, a=cand, b=pub)
    return bool(conn.execute(query).fetchone()[0])


def _apply_keys(
    conn: psycopg.Connection,
    publish_id: int,
    model: CandidateModel,
    dates: list[date],
    pub: sql.Composable,
    cand: sql.Composable,
    cols: sql.Composable,
) -> dict[str, Any]:
    """Replace the keys whose version the dates delivered (or that vanished from them).

    The affected keys are those with ``changed_column`` in ``dates`` in the published
    table or in the candidate; their published rows are saved, deleted and replaced
    by the candidate's. The keys themselves are saved as ``<table>#written`` backup
    rows, so :func:`rollback` knows what to delete. The cost follows the night's
    volume, not the history's.
    """
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in model.unique_key)
    changed = sql.Identifier(model.changed_column or "")
    conn.execute("drop table if exists pg_temp._qudao_affected")
    conn.execute(
        sql.SQL(
            "create temp table _qudao_affected on commit drop as"
            " select {k} from {pub} where {c} = any(%s) union select {k} from {cand} where {c} = any(%s)"
        ).format(k=keys, pub=pub, cand=cand, c=changed),
        (dates, dates),
    )
    conn.execute("analyze pg_temp._qudao_affected")
    in_affected = sql.SQL("({}) in (select {} from pg_temp._qudao_affected)").format(keys, keys)
    publishes.backup(
        conn, publish_id, f"{model.name}#written", sql.SQL("select * from pg_temp._qudao_affected")
    )
    publishes.backup(
        conn, publish_id, model.name, sql.SQL("select * from {} where ").format(pub) + in_affected
    )
    deleted = conn.execute(sql.SQL("delete from {} where ").format(pub) + in_affected).rowcount
    inserted = conn.execute(
        sql.SQL("insert into {} ({}) select {} from {} where ").format(pub, cols, cols, cand) + in_affected
    ).rowcount
    return {
        "mode": "keys",
        "date_column": None,
        "unique_key": list(model.unique_key),
        "changed_column": model.changed_column,
        "keys": [d.isoformat() for d in dates],
        "rows_deleted": deleted,
        "rows_inserted": inserted,
        "created": False,
    }


def publish(
    url: str,
    business_dates: list[date],
    run_id: str,
    manifest_path: Path | None = None,
    *,
    require_gate: bool = True,
) -> PublishResult:
    """Apply ``marts_candidate`` to ``marts`` for ``business_dates`` in one transaction.

    Refuses (raises :class:`PublishRefused`, logs a ``refused`` row) when the gate
    results of ``run_id`` have an error failure or do not exist, and when a night
    published after the earliest date is not among ``business_dates`` (see
    :class:`NightScope`: an older date is published together with the nights after it).
    """
    dates = sorted(set(business_dates))
    if not dates:
        raise ValueError("no business dates to publish")
    models = candidate_models(manifest_path)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_current(conn)
        later = [d for d in published_nights(conn) if d > dates[0] and d not in dates]
        if later:  # its rows were built as known then (or before them): they would rewind the marts
            reason = (
                f"publishing {dates[0]} without the nights published after it"
                f" ({', '.join(map(str, later))}) could make marts older than they are:"
                f" rebuild and publish them together (qudao republish --date {dates[0]})"
            )
            publishes.log_publish(conn, run_id, dates[-1], "refused", {"reason": reason})
            raise PublishRefused(reason)
        if require_gate:
            reason, failures = gates.gate_problems(conn, run_id, dates)
            if reason:
                doc = {"reason": reason, "failures": failures[:50]}
                publishes.log_publish(conn, run_id, dates[-1], "refused", doc)
                raise PublishRefused(reason, failures)
        try:
            with conn.transaction():
                conn.execute("set local lock_timeout = '60s'")
                conn.execute("select pg_advisory_xact_lock(hashtext('qudao.publish'))")
                publish_id = publishes.log_publish(conn, run_id, dates[-1], "publishing", {})
                tables = {m.name: _apply(conn, publish_id, m, dates) for m in models}
                doc = {"dates": [d.isoformat() for d in dates], "tables": tables}
                publishes.mark_published(conn, publish_id, doc, fingerprints(conn, dates))
                publishes.prune_backups(conn, package.KEEP_BACKUPS)
        except Exception as exc:  # everything was rolled back: say so in the log, then fail
            doc = {"reason": f"{type(exc).__name__}: {exc}"[:2000]}
            publishes.log_publish(conn, run_id, dates[-1], "failed", doc)
            raise
    result = PublishResult(publish_id, run_id, dates, tables)
    for line in result.lines():
        log.info(line)
    return result
