"""Write-audit-publish: make a checked night visible in ``marts``, all at once.

dbt writes ``marts_candidate`` (BI cannot see it); the gate checks it; :func:`publish`
copies the night into ``marts`` in **one transaction**:

* missing ``marts`` tables are created like their candidate (columns, types,
  defaults, column and table comments); tables are never dropped, so grants and
  comments survive;
* date-keyed models (dbt ``meta.date_column``) get delete + insert of the
  published dates' keys; other models are replaced whole — with ``DELETE``, not
  ``TRUNCATE``/``DROP``: readers keep their MVCC snapshot and never wait on a
  long lock, and a reader sees either the old night or the new one, never both.

Rollback design: before replacing anything, the rows about to be replaced are
saved as ``jsonb`` in ``ops.publish_backup`` under the new ``publish_id``.
:func:`rollback` undoes the latest publish exactly (delete what it wrote, put the
saved rows back) and marks it ``rolled_back``; calling it again undoes the one
before. Backups of the last :data:`KEEP_BACKUPS` publishes are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from qudao.constants import CANDIDATE_SCHEMA, PUBLISHED_SCHEMA
from qudao.ledger import gates, publishes
from qudao.ledger.migrate import ensure_current
from qudao.night_inputs import fingerprints
from qudao.quality.manifest import CandidateModel, candidate_models

log = logging.getLogger(__name__)

KEEP_BACKUPS = 7  # rollbacks possible: one week of nightly publishes
BI_ROLE = "bi_reader"


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


@dataclass
class RollbackResult:
    """Which publish was undone and what was restored."""

    publish_id: int
    run_id: str
    business_dates: list[date]
    tables: dict[str, int]  # table -> rows restored

    def lines(self) -> list[str]:
        out = [
            f"rolled back publish {self.publish_id} (run {self.run_id},"
            f" {', '.join(map(str, self.business_dates))}): marts is as it was before it"
        ]
        out += [f"  marts.{t}: {n} rows restored" for t, n in sorted(self.tables.items())]
        return out


@dataclass
class PublishedTable:
    """One table of ``marts`` and its last publish (for ``qudao status``)."""

    table: str
    rows: int
    publish_id: int | None
    run_id: str | None
    published_at: datetime | None
    date_column: str | None
    min_date: date | None
    max_date: date | None
    last_dates: list[date]


def _ident(schema: str, table: str) -> sql.Composable:
    return sql.Identifier(schema, table)


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (f"{schema}.{table}",),
    ).fetchall()


def _sync_comments(conn: psycopg.Connection, table: str) -> None:
    cand, pub = f"{CANDIDATE_SCHEMA}.{table}", f"{PUBLISHED_SCHEMA}.{table}"
    comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (cand,)).fetchone()[0]
    current = conn.execute("select obj_description(%s::regclass, 'pg_class')", (pub,)).fetchone()[0]
    if comment and comment != current:
        conn.execute(
            sql.SQL("comment on table {} is {}").format(_ident(PUBLISHED_SCHEMA, table), sql.Literal(comment))
        )
    rows = conn.execute(
        "select c.attname, col_description(%s::regclass, c.attnum), col_description(%s::regclass, p.attnum)"
        " from pg_attribute c join pg_attribute p on p.attrelid = %s::regclass and p.attname = c.attname"
        " where c.attrelid = %s::regclass and c.attnum > 0 and not c.attisdropped",
        (cand, pub, pub, cand),
    ).fetchall()
    for column, want, have in rows:
        if want and want != have:
            conn.execute(
                sql.SQL("comment on column {}.{} is {}").format(
                    _ident(PUBLISHED_SCHEMA, table), sql.Identifier(column), sql.Literal(want)
                )
            )


def _ensure_published_table(conn: psycopg.Connection, table: str) -> bool:
    """Create ``marts.<table>`` like its candidate, or add new columns; True when created."""
    exists = conn.execute("select to_regclass(%s) is not null", (f"{PUBLISHED_SCHEMA}.{table}",)).fetchone()[
        0
    ]
    if not exists:
        conn.execute(
            sql.SQL("create table {} (like {} including defaults including comments)").format(
                _ident(PUBLISHED_SCHEMA, table), _ident(CANDIDATE_SCHEMA, table)
            )
        )
        role = conn.execute("select 1 from pg_roles where rolname = %s", (BI_ROLE,)).fetchone()
        if role:
            conn.execute(
                sql.SQL("grant select on {} to {}").format(
                    _ident(PUBLISHED_SCHEMA, table), sql.Identifier(BI_ROLE)
                )
            )
    else:
        have = {c for c, _ in _columns(conn, PUBLISHED_SCHEMA, table)}
        for column, type_ in _columns(conn, CANDIDATE_SCHEMA, table):
            if column not in have:  # additive change: the new column appears, nothing breaks
                conn.execute(
                    sql.SQL("alter table {} add column {} " + type_).format(
                        _ident(PUBLISHED_SCHEMA, table), sql.Identifier(column)
                    )
                )
    _sync_comments(conn, table)
    _sync_indexes(conn, table)
    return not exists


def _index_shapes(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    """The candidate's or published table's indexes as ``USING <method> (<columns>)``."""
    rows = conn.execute(
        "select pg_get_indexdef(i.indexrelid) from pg_index i where i.indrelid = %s::regclass",
        (f"{schema}.{table}",),
    ).fetchall()
    return {d[d.index(" USING ") + 1 :] for (d,) in rows}


def _sync_indexes(conn: psycopg.Connection, table: str) -> None:
    """Give ``marts.<table>`` the candidate's indexes (keys, night columns).

    Publishing deletes and inserts by date or by key, and the gate and analysts filter on
    the same columns: without them every night would scan the published history.
    Created non-unique: uniqueness is tested on the candidate before publishing.
    """
    have = _index_shapes(conn, PUBLISHED_SCHEMA, table)
    for shape in sorted(_index_shapes(conn, CANDIDATE_SCHEMA, table) - have):
        conn.execute(sql.SQL("create index on {} ").format(_ident(PUBLISHED_SCHEMA, table)) + sql.SQL(shape))


def _apply(
    conn: psycopg.Connection, publish_id: int, model: CandidateModel, dates: list[date]
) -> dict[str, Any]:
    table = model.name
    if conn.execute("select to_regclass(%s) is null", (f"{CANDIDATE_SCHEMA}.{table}",)).fetchone()[0]:
        raise RuntimeError(f"{CANDIDATE_SCHEMA}.{table} does not exist: was dbt run?")
    created = _ensure_published_table(conn, table)
    pub_cols = [c for c, _ in _columns(conn, PUBLISHED_SCHEMA, table)]
    cand_cols = {c for c, _ in _columns(conn, CANDIDATE_SCHEMA, table)}
    lost = [c for c in pub_cols if c not in cand_cols]
    if lost:
        raise RuntimeError(f"{CANDIDATE_SCHEMA}.{table} lacks published columns {lost}: a breaking change")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in pub_cols)
    pub, cand = _ident(PUBLISHED_SCHEMA, table), _ident(CANDIDATE_SCHEMA, table)
    if model.changed_column and not created and model.changed_column in cand_cols:
        filled = conn.execute(
            sql.SQL("select not exists (select from {} where {} is null)").format(
                pub, sql.Identifier(model.changed_column)
            )
        ).fetchone()[0]
        if filled:  # else the column was just added to an older table: replace it whole once
            return _apply_keys(conn, publish_id, model, dates, pub, cand, cols)
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


@dataclass(frozen=True)
class NightScope:
    """What building a business date means once later nights are published.

    A night is built as known now. Its knowledge date ``run_date`` is the later of the
    business date and the latest published night: building an older date rebuilds every
    date from it to that night (dbt ``start_date`` .. ``run_date``) from all loaded data,
    the rows a ``--full-refresh`` through that night gives, so no published mart (a week
    of ``mart_visit_compliance``, a later day that saw the date's deliveries) becomes
    older than what is published. ``dates`` are gated and published together: the
    business date and the published nights after it (a date never published stays so).
    """

    business_date: date
    run_date: date
    dates: tuple[date, ...]

    @property
    def start_date(self) -> date | None:
        """dbt's ``start_date``: None for a night built alone."""
        return self.business_date if self.run_date != self.business_date else None

    def lines(self) -> list[str]:
        if self.start_date is None:
            return []
        return [
            f"{self.business_date} is older than the latest published night {self.run_date}: rebuilding"
            f" {self.business_date} … {self.run_date} from all loaded data, gating and publishing"
            f" {', '.join(map(str, self.dates))}"
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"run_date": self.run_date.isoformat(), "dates": [d.isoformat() for d in self.dates]}

    @classmethod
    def from_dict(cls, business_date: date, doc: dict[str, Any]) -> NightScope:
        return cls(
            business_date,
            date.fromisoformat(doc["run_date"]),
            tuple(date.fromisoformat(d) for d in doc["dates"]),
        )


def published_nights(conn: psycopg.Connection) -> list[date]:
    """The business dates of the publishes in force (not refused, failed or rolled back)."""
    return publishes.published_nights(conn)


def night_scope(url: str, business_date: date) -> NightScope:
    """The :class:`NightScope` of building ``business_date`` now."""
    with psycopg.connect(url, autocommit=True) as conn:
        nights = published_nights(conn)
    later = [d for d in nights if d > business_date]
    return NightScope(business_date, max([business_date, *later]), (business_date, *later))


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
                publishes.prune_backups(conn, KEEP_BACKUPS)
        except Exception as exc:  # everything was rolled back: say so in the log, then fail
            doc = {"reason": f"{type(exc).__name__}: {exc}"[:2000]}
            publishes.log_publish(conn, run_id, dates[-1], "failed", doc)
            raise
    result = PublishResult(publish_id, run_id, dates, tables)
    for line in result.lines():
        log.info(line)
    return result


def rollback(url: str) -> RollbackResult:
    """Undo the latest publish still in force, restoring ``marts`` exactly as it was before it."""
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_current(conn)
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('qudao.publish'))")
            row = publishes.latest_in_force(conn)
            if row is None:
                raise RuntimeError("nothing to roll back: no publish in force")
            publish_id, run_id, doc = row
            later = publishes.publishes_after(conn, publish_id)
            if later >= KEEP_BACKUPS:
                raise RuntimeError(f"publish {publish_id} is older than the {KEEP_BACKUPS} kept backups")
            restored: dict[str, int] = {}
            for table, t in doc["tables"].items():
                pub = _ident(PUBLISHED_SCHEMA, table)
                if t.get("mode") == "keys":
                    keys = sql.SQL(", ").join(sql.Identifier(k) for k in t["unique_key"])
                    conn.execute(
                        sql.SQL("delete from {pub} where ({k}) in (select {k} from ({saved}) r)").format(
                            pub=pub, k=keys, saved=publishes.saved_rows(pub)
                        ),
                        (publish_id, f"{table}#written"),
                    )
                elif t["date_column"]:
                    keys = [date.fromisoformat(k) for k in t["keys"]]
                    conn.execute(
                        sql.SQL("delete from {} where {} = any(%s)").format(
                            pub, sql.Identifier(t["date_column"])
                        ),
                        (keys,),
                    )
                else:
                    conn.execute(sql.SQL("delete from {}").format(pub))
                restored[table] = conn.execute(
                    sql.SQL("insert into {} ").format(pub) + publishes.saved_rows(pub), (publish_id, table)
                ).rowcount
            publishes.mark_rolled_back(conn, publish_id)
    return RollbackResult(publish_id, run_id, [date.fromisoformat(d) for d in doc.get("dates", [])], restored)


#: error failures a republish summary lists per gate (the rest: ops.quality_results)
SUMMARY_FAILURES = 10


@dataclass
class RepublishResult:
    """Outcome of :func:`republish`: rebuilt, gated, and published or refused."""

    business_date: date
    run_id: str
    published: bool
    reason: str = ""
    scope: NightScope | None = None
    build_lines: list[str] = field(default_factory=list)
    dbt_log: Path | None = None
    gates: list[Any] = field(default_factory=list)  # qudao.quality.results.GateResult, one per date
    publish: PublishResult | None = None

    def lines(self) -> list[str]:
        """A short summary: what was rebuilt, the gate's verdict per date, what was published."""
        out = [f"republish {self.business_date} (run {self.run_id})"]
        if self.scope is not None and self.build_lines:
            out += [f"  {line}" for line in self.scope.lines() or [f"rebuilt {self.business_date}"]]
        out += [f"  {line}" for line in self.build_lines]
        if self.dbt_log is not None:
            out.append(f"  dbt log: {self.dbt_log}")
        for gate in self.gates:
            verdict = "PASSED" if gate.passed else "FAILED"
            out.append(
                f"  quality gate {gate.business_date}: {verdict} ({len(gate.results)} checks,"
                f" {len(gate.failures)} errors, {len(gate.warnings)} warnings)"
            )
            out += [f"    {r.line()}" for r in gate.failures[:SUMMARY_FAILURES]]
            if len(gate.failures) > SUMMARY_FAILURES:
                out.append(f"    … {len(gate.failures) - SUMMARY_FAILURES} more in ops.quality_results")
        if self.gates and self.gates[-1].data_docs_path:
            out.append(f"  data docs: {self.gates[-1].data_docs_path}")
        if self.publish:
            p = self.publish
            deleted = sum(t["rows_deleted"] for t in p.tables.values())
            inserted = sum(t["rows_inserted"] for t in p.tables.values())
            out.append(
                f"  published {', '.join(map(str, p.business_dates))} (publish {p.publish_id}):"
                f" {len(p.tables)} marts tables, -{deleted:,} +{inserted:,} rows"
            )
        else:
            out.append(f"  NOT published: {self.reason}")
        return out


def _log_refused(url: str, run_id: str, business_date: date, reason: str, failures: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        publishes.log_publish(
            conn, run_id, business_date, "refused", {"reason": reason, "failures": failures[:50]}
        )


def republish(
    url: str,
    business_date: date,
    manifest_path: Path | None = None,
    *,
    rebuild: bool = True,
    log_dir: Path | None = None,
) -> RepublishResult:
    """After data of ``business_date`` was fixed: rebuild its marts, re-run the gate, publish.

    Nothing is reloaded: ``raw`` is used as it is now (corrected files loaded with
    ``qudao load`` replace the earlier delivery). What is rebuilt, gated and published
    is :func:`night_scope`'s: a date older than the latest published night is rebuilt up
    to that night and published with the nights after it. ``rebuild=False`` skips
    ``dbt build``; ``log_dir`` receives dbt's log (``dbt.log``) instead of the console.
    Returns a refused result (and logs ``refused``) when dbt or the gate fails.
    """
    from qudao.quality.gate import run_gate

    run_id = f"republish__{business_date.isoformat()}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    scope = night_scope(url, business_date)
    out = RepublishResult(business_date, run_id, published=False, scope=scope)
    if rebuild:
        from qudao.transform import build

        built = build(url, scope.run_date, start_date=scope.start_date, log_dir=log_dir)
        out.build_lines = built.lines()
        out.dbt_log = log_dir / "dbt.log" if log_dir is not None else None
        if not built.success:
            out.reason = "dbt build failed"
            _log_refused(url, run_id, business_date, out.reason, built.failures)
            return out
    out.gates = [run_gate(url, d, run_id, "all", manifest_path=manifest_path) for d in scope.dates]
    failures = [r for gate in out.gates for r in gate.failures]
    if failures:
        failed = ", ".join(str(g.business_date) for g in out.gates if not g.passed)
        out.reason = f"quality gate failed on {failed}: {len(failures)} error checks"
        _log_refused(url, run_id, business_date, out.reason, [r.line() for r in failures])
        return out
    try:
        out.publish = publish(url, list(scope.dates), run_id, manifest_path)
    except PublishRefused as exc:  # e.g. a later night was published meanwhile (logged by publish)
        out.reason = str(exc)
        return out
    out.published = True
    return out


def published_state(url: str) -> list[PublishedTable]:
    """Every ``marts`` table with its row count, date range and last publish."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s"
                " and table_type = 'BASE TABLE' order by table_name",
                (PUBLISHED_SCHEMA,),
            ).fetchall()
        ]
        for table in tables:
            last = publishes.last_of_table(conn, table)
            pub = _ident(PUBLISHED_SCHEMA, table)
            rows = conn.execute(sql.SQL("select count(*) from {}").format(pub)).fetchone()[0]
            date_column = last[3].get("date_column") if last else None
            lo = hi = None
            if date_column:
                lo, hi = conn.execute(
                    sql.SQL("select min({c}), max({c}) from {t}").format(c=sql.Identifier(date_column), t=pub)
                ).fetchone()
            out.append(
                PublishedTable(
                    table=table,
                    rows=rows,
                    publish_id=last[0] if last else None,
                    run_id=last[1] if last else None,
                    published_at=last[2] if last else None,
                    date_column=date_column,
                    min_date=lo,
                    max_date=hi,
                    last_dates=[date.fromisoformat(k) for k in (last[3].get("keys", []) if last else [])],
                )
            )
    return out
