"""End to end: generated extracts → `qudao run` (Airflow) → published marts.

The expected numbers are derived here from the generated files themselves, read
with the csv/json/openpyxl modules directly (not with qudao's loader).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse.connection import with_database

pytestmark = pytest.mark.e2e

START = date(2026, 3, 2)  # a Monday
DAYS = 3
END = START + timedelta(days=DAYS - 1)


def read_entity(landing: Path, source: str, day: date, entity: str) -> list[dict[str, str]]:
    """Rows of one delivered file, whatever its format and encoding."""
    folder = landing / source / day.isoformat()
    (path,) = [p for p in folder.iterdir() if p.name.split(".")[0] == entity]
    if path.name.endswith(".xlsx"):
        import openpyxl

        ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        header = [str(h).strip().lower() for h in rows[0]]
        return [dict(zip(header, ["" if v is None else str(v) for v in r], strict=False)) for r in rows[1:]]
    if ".jsonl" in path.name:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    reader = csv.DictReader(io.StringIO(text))
    return [{k.strip().lower(): v for k, v in row.items()} for row in reader]


def qudao(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qudao.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=1500,
    )


def checksum(conn: psycopg.Connection, table: str) -> str:
    return conn.execute(
        f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t"
    ).fetchone()[0]


@pytest.fixture(scope="module")
def night_runs(tmp_path_factory: pytest.TempPathFactory, server_url: str):
    from qudao_demo import generate

    tmp = tmp_path_factory.mktemp("e2e")
    landing = tmp / "landing"
    generate(landing, START, END, scale="small", seed=7)
    database = f"qudao_e2e_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}"')
        admin.execute(f'create database "{database}"')
    url = with_database(server_url, database)
    env = dict(os.environ)
    env.update(
        QUDAO_HOME=str(tmp / "home"),
        QUDAO_WAREHOUSE_URL=url,
        QUDAO_RETRY_DELAY_SECONDS="1",
        QUDAO_EXTRACTS_POKE_SECONDS="1",
        QUDAO_EXTRACTS_DEADLINE_SECONDS="60",
        QUDAO_PII_KEY="e2e-test-key",
    )
    first = qudao("run", "--landing", str(landing), "--start", str(START), "--end", str(END), env=env)
    yield {"landing": landing, "url": url, "env": env, "first": first}
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (database,)
        )
        admin.execute(f'drop database if exists "{database}"')


def test_every_night_succeeds_through_airflow(night_runs):
    first = night_runs["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"{DAYS} of {DAYS} night(s) succeeded" in first.stdout
    with psycopg.connect(night_runs["url"]) as conn:
        published = conn.execute(
            "select business_date from ops.publish_log where status = 'published' order by business_date"
        ).fetchall()
    assert [r[0] for r in published] == [START + timedelta(days=i) for i in range(DAYS)]


def test_raw_rows_reconcile_with_the_files(night_runs):
    landing = night_runs["landing"]
    with psycopg.connect(night_runs["url"]) as conn:
        for day in (START, END):
            orders = read_entity(landing, "dealer_sales", day, "orders")
            (n,) = conn.execute(
                "select count(*) from raw.dealer_sales__orders where _business_date = %s", (day,)
            ).fetchone()
            assert n == len(orders)
            (rejected,) = conn.execute(
                "select coalesce(sum(rows_rejected), 0) from ops.load_manifest where business_date = %s",
                (day,),
            ).fetchone()
            assert rejected == 0  # the generator writes clean data


def test_marts_match_numbers_derived_from_the_extracts(night_runs):
    landing = night_runs["landing"]
    from qudao_demo.regions import read_seed

    target_counties = sum(r["is_target"] == "true" for r in read_seed())
    partners = read_entity(landing, "crm", END, "partners")
    signed_agents: dict[str, int] = {}
    for p in partners:
        if (
            p["tier"] == "2"
            and p["status"] in ("active", "suspended")
            and p["signed_date"] <= END.isoformat()
        ):
            signed_agents[p["parent_partner_id"]] = signed_agents.get(p["parent_partner_id"], 0) + 1
    inventory = read_entity(landing, "dealer_sales", END, "inventory")

    with psycopg.connect(night_runs["url"]) as conn:
        (coverage_rows,) = conn.execute(
            "select count(*) from marts.mart_channel_coverage where as_of_date = %s", (END,)
        ).fetchone()
        assert coverage_rows == target_counties

        got_agents = dict(
            conn.execute(
                "select dealer_id, agents_signed from marts.mart_active_second_tier_agents "
                "where as_of_date = %s and agents_signed > 0",
                (END,),
            ).fetchall()
        )
        assert got_agents == signed_agents

        (inventory_rows,) = conn.execute(
            "select count(*) from marts.mart_dealer_inventory_health where snapshot_date = %s", (END,)
        ).fetchone()
        assert inventory_rows == len(inventory)
        stockouts = sum(int(r["on_hand_qty"]) == 0 for r in inventory)
        (got_stockouts,) = conn.execute(
            "select count(*) from marts.mart_dealer_inventory_health "
            "where snapshot_date = %s and health_band = 'stockout'",
            (END,),
        ).fetchone()
        assert got_stockouts == stockouts

        days = [
            r[0] for r in conn.execute("select business_date from marts.mart_callback_compliance order by 1")
        ]
        assert days == [START + timedelta(days=i) for i in range(DAYS)]


def test_rerunning_a_night_changes_nothing(night_runs):
    tables = [
        "marts.mart_channel_coverage",
        "marts.mart_active_second_tier_agents",
        "raw.dealer_sales__orders",
    ]
    with psycopg.connect(night_runs["url"]) as conn:
        before = {t: checksum(conn, t) for t in tables if not t.startswith("raw")}
        (raw_before,) = conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()
    # --force: rebuild although nothing changed (a plain rerun is skipped: test_unchanged_night)
    again = qudao(
        "run", "--landing", str(night_runs["landing"]), "--date", str(END), "--force", env=night_runs["env"]
    )
    assert again.returncode == 0, again.stdout[-3000:]
    with psycopg.connect(night_runs["url"]) as conn:
        after = {t: checksum(conn, t) for t in before}
        (raw_after,) = conn.execute("select count(*) from raw.dealer_sales__orders").fetchone()
        skipped = conn.execute(
            "select count(*) from ops.load_manifest"
            " where business_date = %s and status = 'skipped_duplicate'",
            (END,),
        ).fetchone()[0]
    assert after == before
    assert raw_after == raw_before
    assert skipped >= 8  # every file of the night was recognised by its checksum


def test_the_nights_one_by_one_equal_one_build_of_them_all(
    night_runs, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 4: loading every day and building once gives the marts the nights gave."""
    from qudao.ingest.loader import load_date
    from qudao.transform import build
    from qudao.warehouse.schema import ensure_schema

    monkeypatch.setenv("QUDAO_PII_KEY", night_runs["env"]["QUDAO_PII_KEY"])
    database = f"qudao_e2e_once_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}"')
        admin.execute(f'create database "{database}"')
    url = with_database(server_url, database)
    try:
        with psycopg.connect(url) as conn:
            ensure_schema(conn)
        for offset in range(DAYS):
            assert load_date(url, str(night_runs["landing"]), START + timedelta(days=offset)).ok
        once = build(url, END)
        assert once.success, once.lines()
        with psycopg.connect(night_runs["url"]) as nightly, psycopg.connect(url) as whole:
            tables = [
                t
                for (t,) in nightly.execute(
                    "select table_name from information_schema.tables where table_schema = 'marts'"
                    " order by table_name"
                ).fetchall()
            ]
            assert {"mart_channel_coverage", "fct_order_lines", "dim_partner"} <= set(tables)
            for table in tables:
                rows = nightly.execute(f"select count(*) from marts.{table}").fetchone()[0]
                assert checksum(nightly, f"marts.{table}") == checksum(whole, f"marts_candidate.{table}"), (
                    f"{table}: the nights' published rows ({rows}) differ from one build of all days"
                )
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (database,)
            )
            admin.execute(f'drop database if exists "{database}"')
