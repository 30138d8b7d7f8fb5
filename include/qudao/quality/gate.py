"""The quality gate: every check of a night, one verdict, every result in ``ops.quality_results``.

``stage="raw"`` checks what loading produced (GX suites on the night's raw rows,
load manifest, reject share, freshness, volume); ``"candidate"`` checks what dbt
built into ``marts_candidate``; ``"all"`` both. A check that cannot run (a
missing table or column, a GX crash) is itself a failed check of its severity.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import psycopg

from qudao.config import settings
from qudao.constants import CANDIDATE_SCHEMA
from qudao.quality import sql_checks
from qudao.quality.gx_runner import Batch, run_batches
from qudao.quality.manifest import CandidateModel, candidate_models
from qudao.quality.results import CheckResult, GateResult, record
from qudao.quality.suites import Suite, load_suites
from qudao.warehouse.connection import sqlalchemy_url

log = logging.getLogger(__name__)

STAGES = ("raw", "candidate", "all")


def _raw_batches(
    conn: psycopg.Connection, suites: list[Suite], d: date
) -> tuple[list[Batch], list[CheckResult]]:
    batches, results = [], []
    for s in suites:
        results.append(sql_checks.raw_freshness(conn, s, d))
        vol = sql_checks.volume_check(conn, s, d)
        if vol:
            results.append(vol)
        batches.append(Batch(s, f"select * from {s.table} where {s.date_column} = '{d.isoformat()}'"))
    return batches, results


def _candidate_batches(
    conn: psycopg.Connection, suites: list[Suite], models: list[CandidateModel], d: date
) -> tuple[list[Batch], list[CheckResult]]:
    batches, results = [], []
    by_table = {s.table: s for s in suites}
    for m in models:
        suite = by_table.get(m.name)
        name = suite.name if suite else f"marts.{m.name}"
        date_column = m.date_column or (suite.date_column if suite else None)
        model = CandidateModel(m.name, date_column, m.date_grain)
        keys = model.keys_for([d])
        severity = suite.options.get("freshness", "warn") if suite else "warn"
        presence = sql_checks.candidate_presence(conn, m.name, date_column, keys, name, severity)
        results += presence
        if not suite or not presence[0].passed:
            continue
        missing = sql_checks.missing_columns(conn, CANDIDATE_SCHEMA, m.name, suite.columns())
        if missing:
            results.append(
                CheckResult(
                    name,
                    "columns_present",
                    "error",
                    False,
                    observed=f"missing {missing}",
                    expected="every column the suite checks",
                )
            )
            continue
        where = (
            f" where {date_column} in ({', '.join(repr(k.isoformat()) for k in keys)})" if date_column else ""
        )
        batches.append(Batch(suite, f"select * from {CANDIDATE_SCHEMA}.{m.name}{where}"))
    built = {m.name for m in models}
    for s in suites:
        if s.table not in built:
            results.append(
                CheckResult(
                    s.name,
                    "model_built",
                    "warn",
                    False,
                    observed="not in dbt manifest",
                    expected=f"{CANDIDATE_SCHEMA}.{s.table}",
                )
            )
    return batches, results


def run_gate(
    url: str,
    business_date: date,
    run_id: str,
    stage: str = "all",
    *,
    manifest_path: Path | None = None,
    expectations_dir: Path | None = None,
    docs_dir: Path | None = None,
) -> GateResult:
    """Run the night's checks of ``stage``, record them, and return the verdict."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    cfg = settings()
    gate = GateResult(run_id=run_id, business_date=business_date, stage=stage)
    batches: list[Batch] = []
    with psycopg.connect(url, autocommit=True) as conn:
        if stage in ("raw", "all"):
            gate.results += sql_checks.load_checks(conn, business_date, cfg.reject_threshold)
            b, r = _raw_batches(conn, load_suites(expectations_dir, "raw"), business_date)
            batches += b
            gate.results += r
        if stage in ("candidate", "all"):
            try:
                models = candidate_models(manifest_path)
            except (OSError, ValueError) as exc:
                models = []
                gate.results.append(
                    CheckResult(
                        "marts",
                        "dbt_manifest",
                        "error",
                        False,
                        observed=str(exc),
                        expected="a readable target/manifest.json",
                    )
                )
            b, r = _candidate_batches(conn, load_suites(expectations_dir, "candidate"), models, business_date)
            batches += b
            gate.results += r
        try:
            gx_results, docs = run_batches(
                sqlalchemy_url(url),
                batches,
                docs_dir or cfg.home / "data_docs",
                run_name=f"{run_id}-{stage}",
                night=business_date,
            )
            gate.results += gx_results
            gate.data_docs_path = docs
        except Exception as exc:  # a crash of the validator must block, not pass
            log.exception("Great Expectations run failed")
            gate.results.append(
                CheckResult(
                    "gx",
                    "great_expectations_run",
                    "error",
                    False,
                    observed=f"{type(exc).__name__}: {exc}"[:500],
                    expected="suites ran",
                )
            )
        record(conn, gate)
    for line in gate.lines():
        log.info(line)
    return gate
