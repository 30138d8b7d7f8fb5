"""Checks GX cannot express well, as plain SQL: load manifest, rejects, volume, freshness.

They return :class:`CheckResult` like the GX checks and go down the same path.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta

import psycopg
from psycopg import sql

from qudao.constants import CANDIDATE_SCHEMA
from qudao.contracts import ENTITIES
from qudao.ledger import manifest
from qudao.quality.results import CheckResult
from qudao.quality.suites import Suite

LOAD_SUITE = "load.manifest"


def load_checks(conn: psycopg.Connection, business_date: date, reject_threshold: float) -> list[CheckResult]:
    """Refused and unfinished files, reject share per file, rows reconciled with the manifest.

    Only current deliveries count: a file replaced by a corrected one (``superseded_at``)
    no longer blocks the night.
    """
    out: list[CheckResult] = []
    rows = manifest.current_files(conn, business_date)
    out += [
        _no_files(
            rows,
            "refused",
            "error",
            "refused",
            "0 refused",
            with_error=True,
            detail="refused files are moved aside and named in ops.load_manifest",
        ),
        _no_files(
            rows,
            "unexpected",
            "warn",
            "unexpected",
            "0 files whose names no contract entity has",
            detail="listed in ops.load_manifest with status 'unexpected'; not loaded",
        ),
        _no_files(rows, "loading", "error", "still loading", "0", check="no_unfinished_loads"),
    ]
    for load_id, source, entity, file_name, status, rows_in, loaded, rejected, _err, lines, no_record in rows:
        if status != "loaded":
            continue
        name = f"{source}.{entity} {file_name} (load {load_id})"
        rows_in, loaded, rejected = rows_in or 0, loaded or 0, rejected or 0
        share = rejected / rows_in if rows_in else 0.0
        reasons = ""
        if rejected:
            top = manifest.top_reject_reasons(conn, load_id)
            reasons = "; ".join(f"{n}× {reason}" for reason, n in top)
        out.append(
            CheckResult(
                LOAD_SUITE,
                f"reject_share[{source}.{entity}/{file_name}]",
                "error",
                share <= reject_threshold,
                observed=f"{rejected}/{rows_in} rows rejected ({share:.2%})",
                expected=f"≤ {reject_threshold:.2%}",
                detail=f"{name}: {reasons}" if reasons else name,
            )
        )
        table = sql.Identifier("raw", f"{source}__{entity}")
        in_raw = conn.execute(
            sql.SQL("select count(*) from {} where _load_id = %s").format(table), (load_id,)
        ).fetchone()[0]
        in_rejects = manifest.rejected_count(conn, load_id)
        # lines is null for loads made before physical lines were counted
        lines_ok = lines is None or lines == rows_in + no_record
        ok = in_raw == loaded and rows_in == loaded + rejected and in_rejects == rejected and lines_ok
        out.append(
            CheckResult(
                LOAD_SUITE,
                f"rows_reconciled[{source}.{entity}/{file_name}]",
                "error",
                ok,
                observed=f"raw {in_raw}, rejects table {in_rejects}"
                + ("" if lines is None else f", {lines} lines in the file"),
                expected=f"manifest: in {rows_in} = loaded {loaded} + rejected {rejected}"
                + ("" if lines is None else f"; lines = {rows_in} records + {no_record} blank/continued"),
                detail=name,
            )
        )
    return out


def _no_files(
    rows: list[tuple],
    status: str,
    severity: str,
    said: str,
    expected: str,
    *,
    check: str | None = None,
    with_error: bool = False,
    detail: str | None = None,
) -> CheckResult:
    """``no_<status>_files``: the current manifest rows of the date with ``status`` name each file."""
    hits = [r for r in rows if r[4] == status]
    named = "".join(f"; {r[1]}/{r[3]}" + (f": {r[8]}" if with_error else "") for r in hits)
    return CheckResult(
        LOAD_SUITE,
        check or f"no_{status}_files",
        severity,
        not hits,
        observed=f"{len(hits)} {said}{named}",
        expected=expected,
        detail=detail if hits else None,
    )


def _count(conn: psycopg.Connection, table: str, date_column: str, d: date) -> int:
    schema, name = table.split(".", 1)
    q = sql.SQL("select count(*) from {} where {} = %s").format(
        sql.Identifier(schema, name), sql.Identifier(date_column)
    )
    return conn.execute(q, (d,)).fetchone()[0]


def raw_freshness(conn: psycopg.Connection, suite: Suite, d: date) -> CheckResult:
    """The night's delivery is there: a current file of that date, and rows for snapshots.

    A required entity without it is an error; an optional one (filings) only warns.
    Event extracts may legitimately be empty (no calls on a holiday): their size is
    judged by the volume check.
    """
    n = _count(conn, suite.table, suite.date_column or "_business_date", d)
    source, entity = suite.options["entity"].split(".", 1)
    contract = next((e for e in ENTITIES if e.qualified == suite.options["entity"]), None)
    snapshot = contract.snapshot if contract else False
    files = manifest.current_deliveries(conn, d, source, entity)
    required = suite.options.get("required", True)
    return CheckResult(
        suite.name,
        "freshness(_business_date)",
        "error" if required else "warn",
        files > 0 and (n > 0 or not snapshot),
        observed=f"{n} rows, {files} files for {d}",
        expected=f"a loaded file for {d}" + (" with rows (full snapshot)" if snapshot else ""),
    )


def volume_check(conn: psycopg.Connection, suite: Suite, d: date) -> CheckResult | None:
    """Tonight's rows within [low×, high×] the trailing 7-day median; warn only with short history."""
    opts = suite.options.get("volume")
    if not opts:
        return None
    schema, name = suite.table.split(".", 1)
    col = sql.Identifier(suite.date_column or "_business_date")
    q = sql.SQL(
        "select {c}, count(*) from {t} where {c} >= %s and {c} < %s group by {c} order by {c}"
    ).format(c=col, t=sql.Identifier(schema, name))
    history = [n for _, n in conn.execute(q, (d - timedelta(days=7), d)).fetchall()]
    today = _count(conn, suite.table, suite.date_column or "_business_date", d)
    low, high, min_history = opts.get("low", 0.5), opts.get("high", 2.0), opts.get("min_history", 7)
    severity = opts.get("severity", "warn") if len(history) >= min_history else "warn"
    if not history:
        return CheckResult(
            suite.name,
            "volume_vs_trailing_median",
            "warn",
            True,
            observed=f"{today} rows",
            expected="no history yet",
            detail="first night",
        )
    median = statistics.median(history)
    ok = low * median <= today <= high * median
    return CheckResult(
        suite.name,
        "volume_vs_trailing_median",
        severity,
        ok,
        observed=f"{today} rows",
        expected=f"[{low * median:g}, {high * median:g}] ({low}×–{high}× median {median:g}, "
        f"{len(history)} days)",
        detail=None if len(history) >= min_history else f"only {len(history)} days of history: warn only",
    )


def candidate_presence(
    conn: psycopg.Connection,
    table: str,
    date_column: str | None,
    keys: list[date],
    suite_name: str,
    severity: str,
) -> list[CheckResult]:
    """The model exists in ``marts_candidate`` and (date-keyed) has rows for the night."""
    exists = conn.execute("select to_regclass(%s) is not null", (f"marts_candidate.{table}",)).fetchone()[0]
    out = [
        CheckResult(
            suite_name,
            "table_exists",
            "error",
            exists,
            observed="present" if exists else "missing",
            expected=f"marts_candidate.{table}",
        )
    ]
    if exists and date_column:
        q = sql.SQL("select count(*) from {} where {} = any(%s)").format(
            sql.Identifier(CANDIDATE_SCHEMA, table), sql.Identifier(date_column)
        )
        n = conn.execute(q, (keys,)).fetchone()[0]
        out.append(
            CheckResult(
                suite_name,
                f"freshness({date_column})",
                severity,
                n > 0,
                observed=f"{n} rows",
                expected=f"rows for {', '.join(map(str, keys))}",
            )
        )
    return out


def missing_columns(conn: psycopg.Connection, schema: str, table: str, columns: set[str]) -> list[str]:
    have = {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
            (schema, table),
        ).fetchall()
    }
    return sorted(columns - have)
