"""Write-audit-publish against a real PostgreSQL: gate, atomic publish, rollback."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest

import qudao.publish as publish_module
from qudao.publish import PublishRefused, publish, published_state, rollback
from qudao.quality.gate import run_gate
from qudao.quality.results import CheckResult, GateResult, record

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
GRANTED = "select has_table_privilege('qudao_test_bi', 'marts.dim_product', 'select')"
TABLES = ("mart_callback_compliance", "mart_dealer_inventory_health", "dim_product")

CANDIDATE_DDL = """
create table marts_candidate.mart_callback_compliance (
    business_date date, partners_developed integer, partners_called_back integer,
    callback_rate numeric(5, 4), is_compliant boolean);
comment on table marts_candidate.mart_callback_compliance is 'Daily call-back compliance';
comment on column marts_candidate.mart_callback_compliance.callback_rate is 'called back / developed';
create table marts_candidate.mart_dealer_inventory_health (
    snapshot_date date, partner_id text, sku text, on_hand_qty integer, in_transit_qty integer,
    sellout_28d_qty integer, avg_daily_sellout numeric(12, 4), days_of_supply numeric(8, 1),
    health_band text);
create table marts_candidate.dim_product (sku text, product_name text, list_price numeric(14, 2));
"""


def write_manifest(path: Path) -> Path:
    nodes = {
        "model.qudao.mart_callback_compliance": {"meta": {"date_column": "business_date"}},
        "model.qudao.mart_dealer_inventory_health": {"meta": {"date_column": "snapshot_date"}},
        "model.qudao.dim_product": {"meta": {}},
        "model.qudao.stg_orders": {"meta": {}, "schema": "staging"},
    }
    doc = {
        "nodes": {
            k: {
                "resource_type": "model",
                "name": k.rsplit(".", 1)[1],
                "alias": k.rsplit(".", 1)[1],
                "schema": v.get("schema", "marts_candidate"),
                "config": {"meta": v["meta"]},
            }
            for k, v in nodes.items()
        }
    }
    path.write_text(json.dumps(doc))
    return path


def build_night(conn: psycopg.Connection, d: date, *, scale: int = 1, duplicate: bool = False) -> None:
    """What dbt would leave in marts_candidate after night ``d`` (history kept, like incremental)."""
    if conn.execute("select to_regclass('marts_candidate.dim_product') is null").fetchone()[0]:
        conn.execute(CANDIDATE_DDL)
    n = d.day * 10 * scale
    conn.execute(
        "insert into marts_candidate.mart_callback_compliance values (%s, %s, %s, %s, %s)",
        (d, n, n // 5, round((n // 5) / n, 4), (n // 5) / n >= 0.15),
    )
    conn.execute(
        "insert into marts_candidate.mart_dealer_inventory_health"
        " select %s, 'D' || p, 'SKU' || s, p * s + %s, 1, 28 * s, s,"
        " round((p * s + %s)::numeric / s, 1), 'healthy'"
        " from generate_series(1, 5) p, generate_series(1, 4) s",
        (d, d.day, d.day),
    )
    if duplicate:
        conn.execute(
            "insert into marts_candidate.mart_dealer_inventory_health"
            " select * from marts_candidate.mart_dealer_inventory_health where snapshot_date = %s limit 1",
            (d,),
        )
    conn.execute("delete from marts_candidate.dim_product")
    conn.execute(
        "insert into marts_candidate.dim_product select 'SKU' || s, '产品' || s || '-' || %s, s * 1.5"
        " from generate_series(1, 4) s",
        (d.day,),
    )


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    out = {}
    for t in TABLES:
        if conn.execute("select to_regclass(%s) is not null", (f"marts.{t}",)).fetchone()[0]:
            out[t] = conn.execute(
                f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from marts.{t} t"
            ).fetchone()[0]
    return out


def passing_gate(conn: psycopg.Connection, run_id: str, d: date) -> None:
    """Record a passed gate without running GX (these tests are about publishing)."""
    record(conn, GateResult(run_id, d, "all", [CheckResult("test", "ok", "error", True)]))


def test_error_fault_blocks_publish_and_next_clean_night_publishes(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    gate = run_gate(db_url, D1, "run-1", "candidate", manifest_path=manifest, docs_dir=tmp_path / "docs")
    assert gate.passed, gate.lines()
    assert (tmp_path / "docs" / "index.html").exists()
    publish(db_url, [D1], "run-1", manifest)
    before = checksums(conn)
    assert set(before) == set(TABLES)

    # night 2: a duplicated key in a candidate mart
    build_night(conn, D2, duplicate=True)
    gate = run_gate(db_url, D2, "run-2", "candidate", manifest_path=manifest, docs_dir=tmp_path / "docs")
    assert not gate.passed
    names = {(f.suite, f.check_name) for f in gate.failures}
    assert (
        "marts.mart_dealer_inventory_health",
        "expect_compound_columns_to_be_unique(snapshot_date, partner_id, sku)",
    ) in names
    dup = next(f for f in gate.failures if "unique" in f.check_name)
    assert dup.observed.startswith("2 of 21 rows unexpected")
    stored = conn.execute(
        "select count(*) from ops.quality_results"
        " where run_id = 'run-2' and not passed and severity = 'error'"
    ).fetchone()[0]
    assert stored == len(gate.failures) >= 1
    with pytest.raises(PublishRefused, match="quality gate failed"):
        publish(db_url, [D2], "run-2", manifest)
    assert checksums(conn) == before
    status = conn.execute("select status from ops.publish_log order by publish_id desc limit 1").fetchone()[0]
    assert status == "refused"

    # night 3 clean (dbt rebuilt the candidate): it publishes, and night 2 stays unpublished
    conn.execute("delete from marts_candidate.mart_dealer_inventory_health where snapshot_date = %s", (D2,))
    build_night(conn, D3)
    gate = run_gate(db_url, D3, "run-3", "candidate", manifest_path=manifest, docs_dir=tmp_path / "docs")
    assert gate.passed, gate.lines()
    res = publish(db_url, [D3], "run-3", manifest)
    assert res.tables["mart_dealer_inventory_health"]["rows_inserted"] == 20
    dates = conn.execute(
        "select array_agg(distinct snapshot_date order by snapshot_date)"
        " from marts.mart_dealer_inventory_health"
    ).fetchone()[0]
    assert dates == [D1, D3]


def test_warn_fault_publishes_and_is_recorded(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    conn.execute(
        "update marts_candidate.mart_dealer_inventory_health set days_of_supply = 999.0"
        " where partner_id in ('D1', 'D2', 'D3')"
    )
    gate = run_gate(db_url, D1, "run-w", "candidate", manifest_path=manifest, docs_dir=tmp_path / "docs")
    assert gate.passed
    assert [w.check_name for w in gate.warnings if w.suite == "marts.mart_dealer_inventory_health"] == [
        "expect_column_values_to_be_between(days_of_supply)"
    ]
    publish(db_url, [D1], "run-w", manifest)
    row = conn.execute(
        "select severity, passed, observed from ops.quality_results where run_id = 'run-w'"
        " and check_name = 'expect_column_values_to_be_between(days_of_supply)' and severity = 'warn'"
    ).fetchone()
    assert row[0] == "warn" and row[1] is False
    assert row[2].startswith("12 of 20 rows unexpected") and "999" in row[2]
    assert conn.execute("select count(*) from marts.mart_dealer_inventory_health").fetchone()[0] == 20


def test_publish_without_gate_is_refused(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    with pytest.raises(PublishRefused, match="no quality gate results"):
        publish(db_url, [D1], "never-gated", manifest)
    assert conn.execute("select to_regclass('marts.dim_product')").fetchone()[0] is None


def test_comments_grants_survive_and_rollback_restores_exactly(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    passing_gate(conn, "r1", D1)
    publish(db_url, [D1], "r1", manifest)
    assert (
        conn.execute(
            "select obj_description('marts.mart_callback_compliance'::regclass, 'pg_class')"
        ).fetchone()[0]
        == "Daily call-back compliance"
    )
    conn.execute(
        "do $$ begin if not exists (select from pg_roles where rolname = 'qudao_test_bi') then "
        "create role qudao_test_bi; end if; end $$"
    )
    conn.execute("grant select on marts.dim_product to qudao_test_bi")
    after_1 = checksums(conn)

    build_night(conn, D2, scale=2)
    passing_gate(conn, "r2", D2)
    publish(db_url, [D2], "r2", manifest)
    after_2 = checksums(conn)
    assert after_2 != after_1
    assert conn.execute(
        "select has_table_privilege('qudao_test_bi', 'marts.dim_product', 'select')"
    ).fetchone()[0]

    rb = rollback(db_url)
    assert rb.run_id == "r2" and rb.business_dates == [D2]
    assert checksums(conn) == after_1
    assert conn.execute(
        "select has_table_privilege('qudao_test_bi', 'marts.dim_product', 'select')"
    ).fetchone()[0]
    state = {s.table: s for s in published_state(db_url)}
    assert state["mart_callback_compliance"].run_id == "r1"
    assert state["mart_callback_compliance"].max_date == D1
    assert state["dim_product"].rows == 4
    # republishing night 2 and rolling back again lands on night 1 again
    passing_gate(conn, "r2b", D2)
    publish(db_url, [D2], "r2b", manifest)
    assert checksums(conn) == after_2
    rollback(db_url)
    assert checksums(conn) == after_1


def test_publish_is_atomic_for_concurrent_readers(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    passing_gate(conn, "a1", D1)
    publish(db_url, [D1], "a1", manifest)
    # a big second night so the publish takes a while
    conn.execute(CANDIDATE_DDL.replace("create table marts_candidate.", "create table if not exists x_"))
    build_night(conn, D2)
    conn.execute(
        "insert into marts_candidate.mart_dealer_inventory_health"
        " select %s, 'X' || g, 'SKU1', 1, 0, 0, 0, null, 'no_movement' from generate_series(1, 60000) g",
        (D2,),
    )
    passing_gate(conn, "a2", D2)
    probe = (
        "select (select count(*) from marts.mart_dealer_inventory_health),"
        " (select max(snapshot_date) from marts.mart_dealer_inventory_health),"
        " (select max(business_date) from marts.mart_callback_compliance),"
        " (select string_agg(product_name, ',' order by sku) from marts.dim_product)"
    )
    state_1 = conn.execute(probe).fetchone()

    reader = psycopg.connect(db_url)
    reader.execute("begin isolation level repeatable read")
    assert reader.execute(probe).fetchone() == state_1

    seen: set[tuple] = set()
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                seen.add(tuple(c.execute(probe).fetchone()))

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.2)
    started = time.monotonic()
    publish(db_url, [D2], "a2", manifest)
    elapsed = time.monotonic() - started
    time.sleep(0.2)
    stop.set()
    t.join()
    state_2 = conn.execute(probe).fetchone()
    assert state_2 != state_1
    # the repeatable-read reader still sees night 1, untouched and unblocked
    assert reader.execute(probe).fetchone() == state_1
    reader.rollback()
    reader.close()
    assert seen <= {tuple(state_1), tuple(state_2)}, seen
    assert tuple(state_1) in seen and tuple(state_2) in seen
    assert elapsed < 30


def test_a_publish_that_fails_midway_changes_nothing(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    passing_gate(conn, "f1", D1)
    publish(db_url, [D1], "f1", manifest)
    before = checksums(conn)
    build_night(conn, D2, scale=3)
    # tables are applied in name order: the last one fails after the other two were written
    conn.execute("alter table marts_candidate.mart_dealer_inventory_health drop column health_band")
    passing_gate(conn, "f2", D2)
    with pytest.raises(RuntimeError, match="lacks published columns"):
        publish(db_url, [D2], "f2", manifest)
    assert checksums(conn) == before
    assert conn.execute(
        "select status from ops.publish_log where run_id = 'f2' order by publish_id"
    ).fetchall() == [("failed",)]


def test_a_gate_rerun_after_a_fix_replaces_the_failed_verdict(db_url, conn, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    failed = CheckResult("marts.dim_product", "unique(sku)", "error", False, observed="2 duplicates")
    record(conn, GateResult("g1", D1, "all", [failed]))
    with pytest.raises(PublishRefused, match="quality gate failed") as refused:
        publish(db_url, [D1], "g1", manifest)
    assert refused.value.failures == ["marts.dim_product :: unique(sku) — observed 2 duplicates"]
    record(conn, GateResult("g1", D1, "raw", [CheckResult("load.manifest", "ok", "error", True)]))
    with pytest.raises(PublishRefused):  # a raw-only re-run does not clear the failed candidate check
        publish(db_url, [D1], "g1", manifest)
    passing_gate(conn, "g1", D1)  # the full gate re-run after the fix passes
    assert publish(db_url, [D1], "g1", manifest).tables["dim_product"]["rows_inserted"] == 4


def test_backups_are_kept_for_the_latest_publishes_only(db_url, conn, tmp_path, monkeypatch):
    monkeypatch.setattr(publish_module, "KEEP_BACKUPS", 2)
    manifest = write_manifest(tmp_path / "manifest.json")
    for i, d in enumerate((D1, D2, D3)):
        build_night(conn, d)
        with pytest.raises(PublishRefused):  # refused publishes do not push backups out
            publish(db_url, [d], f"never-gated-{i}", manifest)
        passing_gate(conn, f"k{i}", d)
        publish(db_url, [d], f"k{i}", manifest)
    assert rollback(db_url).run_id == "k2"
    assert rollback(db_url).run_id == "k1"
    with pytest.raises(RuntimeError, match="older than the 2 kept backups"):
        rollback(db_url)


def test_facts_publish_the_keys_a_night_changed(db_url, conn, tmp_path):
    """A latest-version fact is published by key: the night's versions replace theirs, the rest stays."""
    manifest = tmp_path / "facts.json"
    # as dbt writes it: the key in the model's own config, the changed column in its yml meta
    config = {"unique_key": ["line_id"], "meta": {"changed_column": "last_delivered_date"}}
    node = {"resource_type": "model", "name": "fct_lines", "alias": "fct_lines", "schema": "marts_candidate"}
    manifest.write_text(json.dumps({"nodes": {"model.qudao.fct_lines": {**node, "config": config}}}))
    conn.execute(
        "create table marts_candidate.fct_lines (line_id text, amount integer, last_delivered_date date)"
    )

    def candidate(*rows: tuple[str, int, date]) -> None:
        conn.execute("delete from marts_candidate.fct_lines")
        for row in rows:
            conn.execute("insert into marts_candidate.fct_lines values (%s, %s, %s)", row)

    def published() -> list[tuple]:
        return conn.execute("select * from marts.fct_lines order by line_id").fetchall()

    candidate(("L1", 10, D1), ("L2", 20, D1))
    passing_gate(conn, "f1", D1)
    first = publish(db_url, [D1], "f1", manifest)
    assert first.tables["fct_lines"]["mode"] == "whole" and published() == [("L1", 10, D1), ("L2", 20, D1)]

    candidate(("L1", 11, D2), ("L2", 20, D1), ("L3", 30, D2))  # L1 resent with a change, L3 new
    passing_gate(conn, "f2", D2)
    second = publish(db_url, [D2], "f2", manifest).tables["fct_lines"]
    assert (second["mode"], second["rows_deleted"], second["rows_inserted"]) == ("keys", 1, 2)
    after_2 = published()
    assert after_2 == [("L1", 11, D2), ("L2", 20, D1), ("L3", 30, D2)]

    candidate(("L1", 10, D1), ("L2", 20, D1))  # a corrected D2 file: L3 gone, L1 back to its D1 version
    passing_gate(conn, "f3", D2)
    third = publish(db_url, [D2], "f3", manifest).tables["fct_lines"]
    assert (third["rows_deleted"], third["rows_inserted"]) == (2, 1)
    assert published() == [("L1", 10, D1), ("L2", 20, D1)]

    rollback(db_url)
    assert published() == after_2


def test_a_table_replaced_whole_that_the_night_left_as_it_was_is_not_copied_again(db_url, conn, tmp_path):
    """dim_product comes out of the night as it went in: no backup, no delete, no insert; a
    rollback of that publish leaves it as it is, and one of the publish before restores it."""
    manifest = write_manifest(tmp_path / "manifest.json")
    build_night(conn, D1)
    passing_gate(conn, "u1", D1)
    first = publish(db_url, [D1], "u1", manifest).tables["dim_product"]
    assert (first["mode"], first["rows_deleted"], first["rows_inserted"]) == ("whole", 0, 4)
    after_1 = checksums(conn)

    conn.execute("insert into marts_candidate.mart_callback_compliance values (%s, 20, 4, 0.2, true)", (D2,))
    passing_gate(conn, "u2", D2)  # the candidate's dim_product is still night 1's
    second = publish(db_url, [D2], "u2", manifest)
    assert (second.tables["dim_product"]["mode"], second.tables["dim_product"]["rows_inserted"]) == (
        "unchanged",
        0,
    )
    assert "  marts.dim_product: -0 +0 (unchanged)" in second.lines()
    assert conn.execute(
        "select count(*) from ops.publish_backup where publish_id = %s and table_name = 'dim_product'",
        (second.publish_id,),
    ).fetchone() == (0,)
    assert checksums(conn)["dim_product"] == after_1["dim_product"]

    build_night(conn, D3)  # dim_product's names change with the night: replaced whole again
    passing_gate(conn, "u3", D3)
    third = publish(db_url, [D3], "u3", manifest).tables["dim_product"]
    assert (third["mode"], third["rows_deleted"], third["rows_inserted"]) == ("whole", 4, 4)

    rollback(db_url)  # u3
    rollback(db_url)  # u2: dim_product was left alone, and stays night 1's
    assert checksums(conn) == after_1
    rollback(db_url)  # u1: marts as before the first publish
    assert conn.execute("select count(*) from marts.dim_product").fetchone() == (0,)
