"""The quality gate on real nights: generated extracts, loaded, built by dbt, checked, published.

One database is built once for the module (two nights loaded, ``dbt build`` once);
the tests run in file order on it and each undoes the faults it plants.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.config import environment
from qudao.ingest import load_date
from qudao.publish import PublishRefused, publish, rollback
from qudao.quality import sql_checks
from qudao.quality.gate import run_gate
from qudao.quality.suites import load_suites
from qudao.status import published_rows
from qudao.transform import run_dbt
from qudao.warehouse.connection import with_database
from qudao.warehouse.schema import ensure_schema
from qudao_demo import generate

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
VARS = f"{{run_date: '{D2}', start_date: '{D1}'}}"


@dataclass
class Night:
    url: str
    home: Path
    landing: Path
    manifest: Path


@pytest.fixture(scope="module")
def night(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    """Two generated nights loaded and built into ``marts_candidate`` (nothing published)."""
    base = tmp_path_factory.mktemp("gate-night")
    env = {
        "QUDAO_HOME": str(base / "home"),
        "DBT_TARGET_PATH": str(base / "dbt_target"),  # never the checkout's dbt_project/target
        "DBT_LOG_PATH": str(base / "dbt_logs"),
    }
    with environment(env):
        name = f"qudao_t_gate_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'create database "{name}"')
        url = with_database(server_url, name)
        try:
            with psycopg.connect(url) as conn:
                ensure_schema(conn)
            landing = base / "landing"
            generate(landing, D1, D3, scale="small", seed=42)
            for d in (D1, D2):
                assert load_date(url, str(landing), d).ok
            # one dbt invocation builds both nights into marts_candidate; dbt's own tests are
            # not what is tested here, so a failing dbt test elsewhere does not skip models
            result = run_dbt(
                ["build", "--full-refresh", "--exclude-resource-type", "test", "unit_test", "--vars", VARS],
                url,
            )
            assert result.success, result.lines()
            yield Night(url, base / "home", landing, base / "dbt_target" / "manifest.json")
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
                )
                admin.execute(f'drop database if exists "{name}"')


def marts_checksums(url: str) -> dict[str, str]:
    """md5 of every table's rows in ``marts``."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
                " order by table_name"
            ).fetchall()
        ]
        return {
            t: conn.execute(
                f"select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from marts.\"{t}\" x"
            ).fetchone()[0]
            for t in tables
        }


STATE: dict[str, dict[str, str]] = {}


def test_good_nights_pass_and_publish(night: Night) -> None:
    gate = run_gate(night.url, D1, "n1", manifest_path=night.manifest)
    assert gate.passed, gate.lines()
    assert gate.data_docs_path == night.home / "data_docs" / "nights" / D1.isoformat() / "index.html"
    assert gate.data_docs_path.exists()
    suites = {r.suite for r in gate.results}
    assert {"raw.crm__partners", "marts.mart_channel_coverage", "load.manifest"} <= suites
    publish(night.url, [D1], "n1", night.manifest)
    STATE["n1"] = marts_checksums(night.url)

    gate = run_gate(night.url, D2, "n2", manifest_path=night.manifest)
    assert gate.passed, gate.lines()
    # warnings are reported, not blocking: two days of history make volume checks warn-only
    assert all(w.check_name == "volume_vs_trailing_median" for w in gate.warnings), gate.lines()
    volume = [r for r in gate.results if r.check_name == "volume_vs_trailing_median"]
    assert volume and {r.severity for r in volume} == {"warn"}
    with psycopg.connect(night.url, autocommit=True) as conn:
        stored = conn.execute(
            "select count(*), count(*) filter (where not passed and severity = 'warn')"
            " from ops.quality_results where run_id = 'n2'"
        ).fetchone()
        assert stored == (len(gate.results), len(gate.warnings))
        assert conn.execute(
            "select passed, errors from ops.gate_runs where run_id = 'n2' and business_date = %s", (D2,)
        ).fetchone() == (True, 0)
    res = publish(night.url, [D2], "n2", night.manifest)
    assert res.tables["mart_channel_coverage"]["rows_inserted"] > 0
    assert (
        published_rows(night.url, D2)["mart_channel_coverage"]
        == (res.tables["mart_channel_coverage"]["rows_inserted"])
    )
    STATE["n2"] = marts_checksums(night.url)
    assert STATE["n2"] != STATE["n1"]


_PLANT_DUPLICATE = (
    "insert into marts_candidate.mart_channel_coverage"
    " select * from marts_candidate.mart_channel_coverage where as_of_date = %s limit 1"
)


def test_duplicate_key_in_candidate_mart_blocks_and_marts_stay_unchanged(night: Night) -> None:
    with psycopg.connect(night.url, autocommit=True) as conn:
        # the grain is the mart's primary key: PostgreSQL refuses the duplicate itself ...
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(_PLANT_DUPLICATE, (D2,))
        # ... and should a candidate ever lack its key, the gate's own test still catches it
        (key,) = conn.execute(
            "select conname from pg_constraint"
            " where conrelid = 'marts_candidate.mart_channel_coverage'::regclass and contype = 'p'"
        ).fetchone()
        conn.execute(f'alter table marts_candidate.mart_channel_coverage drop constraint "{key}"')
        conn.execute(_PLANT_DUPLICATE, (D2,))
        rows = conn.execute(
            "select count(*) from marts_candidate.mart_channel_coverage where as_of_date = %s", (D2,)
        ).fetchone()[0]
    try:
        gate = run_gate(night.url, D2, "n2-dup", manifest_path=night.manifest)
        assert not gate.passed
        dup = [f for f in gate.failures if f.suite == "marts.mart_channel_coverage"]
        assert [f.check_name for f in dup] == [
            "expect_compound_columns_to_be_unique(as_of_date, region_code)"
        ]
        assert dup[0].observed.startswith(f"2 of {rows} rows unexpected")
        line = next(ln for ln in gate.lines() if "mart_channel_coverage" in ln)
        assert "FAIL [error] marts.mart_channel_coverage :: expect_compound_columns_to_be_unique" in line
        assert f"observed 2 of {rows} rows unexpected" in line
        with pytest.raises(PublishRefused, match="quality gate failed") as refused:
            publish(night.url, [D2], "n2-dup", night.manifest)
        assert any("expect_compound_columns_to_be_unique" in f for f in refused.value.failures)
        assert marts_checksums(night.url) == STATE["n2"]
    finally:
        with psycopg.connect(night.url, autocommit=True) as conn:
            conn.execute(
                "delete from marts_candidate.mart_channel_coverage a"
                " using marts_candidate.mart_channel_coverage b"
                " where a.as_of_date = %s and a.as_of_date = b.as_of_date and a.region_code = b.region_code"
                " and a.ctid > b.ctid",
                (D2,),
            )
            conn.execute(
                f'alter table marts_candidate.mart_channel_coverage add constraint "{key}"'
                " primary key (as_of_date, region_code)"
            )


def test_rollback_restores_the_previous_night(night: Night) -> None:
    rb = rollback(night.url)
    assert rb.run_id == "n2" and rb.business_dates == [D2]
    assert marts_checksums(night.url) == STATE["n1"]
    assert published_rows(night.url, D2)["mart_channel_coverage"] == 0
    assert any("rolled back" in ln for ln in rb.lines())


def _plant_raw_faults(landing: Path) -> None:
    """Night 3: calls with negative durations (10 %), no partners file, products cut to a tenth."""
    calls = landing / "call_center" / D3.isoformat() / "calls.jsonl"
    lines = calls.read_text(encoding="utf-8").splitlines()
    bad = []
    for i, ln in enumerate(lines):
        rec = json.loads(ln)
        if i % 10 == 0:
            rec["duration_seconds"] = -5
        bad.append(json.dumps(rec, ensure_ascii=False))
    calls.write_text("\n".join(bad) + "\n", encoding="utf-8")
    (landing / "crm" / D3.isoformat() / "partners.csv").unlink()
    products = landing / "crm" / D3.isoformat() / "products.csv"
    rows = products.read_text(encoding="utf-8").splitlines()
    products.write_text("\n".join(rows[: 1 + max(1, (len(rows) - 1) // 10)]) + "\n", encoding="utf-8")


def test_raw_faults_block_the_night(night: Night) -> None:
    before = marts_checksums(night.url)
    _plant_raw_faults(night.landing)
    load_date(night.url, str(night.landing), D3)
    gate = run_gate(night.url, D3, "n3", "raw")
    assert not gate.passed
    failures = {(f.suite, f.check_name): f for f in gate.failures}
    reject = failures[("load.manifest", "reject_share[call_center.calls/calls.jsonl]")]
    assert "rows rejected" in reject.observed and reject.expected == "≤ 1.00%"
    n_bad, n_in = (int(x) for x in reject.observed.split(" ")[0].split("/"))
    assert n_in >= 10 and n_bad == (n_in + 9) // 10
    fresh = failures[("raw.crm__partners", "freshness(_business_date)")]
    assert fresh.observed == f"0 rows, 0 files for {D3}"
    assert any("reject_share[call_center.calls" in ln and "rows rejected" in ln for ln in gate.lines())
    # the products volume drop only warns with two days of history …
    warned = {(w.suite, w.check_name) for w in gate.warnings}
    assert ("raw.crm__products", "volume_vs_trailing_median") in warned
    # … and blocks once the history is long enough (here: a suite asking for two days)
    suite = next(s for s in load_suites(stage="raw") if s.table == "raw.crm__products")
    strict = replace(
        suite, options={**suite.options, "volume": {**suite.options["volume"], "min_history": 2}}
    )
    with psycopg.connect(night.url, autocommit=True) as conn:
        vol = sql_checks.volume_check(conn, strict, D3)
    assert vol is not None and vol.severity == "error" and not vol.passed
    assert vol.observed.endswith("rows") and "median" in vol.expected

    with pytest.raises(PublishRefused):
        publish(night.url, [D3], "n3", night.manifest)
    assert marts_checksums(night.url) == before
    with psycopg.connect(night.url, autocommit=True) as conn:
        log = conn.execute(
            "select status, tables from ops.publish_log order by publish_id desc limit 1"
        ).fetchone()
    assert log[0] == "refused" and "reject_share" in json.dumps(log[1], ensure_ascii=False)
