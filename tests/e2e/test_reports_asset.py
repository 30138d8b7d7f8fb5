"""End to end: a published night's asset event queues the reporting DAG; a blocked night's does not.

Two nights through Airflow (``qudao run``, ``dag.test``): Sun 2026-03-08 publishes,
Mon 03-09 has a garbage orders file and its raw gate blocks it. Airflow's metadata
must then hold exactly one published-marts event, naming 03-08 in its extra, and
one queued run of ``channel_reports`` for the scheduler to start (the DAGs are
serialized first, as the scheduler's DAG processor does, so Airflow knows who
consumes the asset, and ``channel_reports`` is unpaused: a paused DAG queues nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from qudao.assets import PUBLISHED_MARTS
from qudao.config import PROJECT_ROOT
from qudao.contracts import entity
from qudao.warehouse.connection import with_database
from qudao_testing.airflow_db import airflow_rows

pytestmark = pytest.mark.e2e

GOOD, BAD = date(2026, 3, 8), date(2026, 3, 9)


def _qudao(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qudao.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=900,
    )


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory, server_url: str) -> Iterator[dict]:
    from qudao_demo import generate

    tmp = tmp_path_factory.mktemp("reports-asset")
    landing = tmp / "landing"
    generate(landing, GOOD, BAD, scale="small", seed=5)
    orders = landing / "dealer_sales" / BAD.isoformat() / "orders.csv"
    header = ",".join(entity("dealer_sales.orders").column_names)
    rows = [f"X{i},1,not-a-date,D0001,,SKU,lots,?,lost,yesterday" for i in range(40)]
    orders.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    database = f"qudao_e2e_assets_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}"')
        admin.execute(f'create database "{database}"')
    env = dict(os.environ)
    env.update(
        QUDAO_HOME=str(tmp / "home"),
        QUDAO_WAREHOUSE_URL=with_database(server_url, database),
        QUDAO_RETRY_DELAY_SECONDS="1",
        QUDAO_EXTRACTS_POKE_SECONDS="1",
        QUDAO_EXTRACTS_DEADLINE_SECONDS="30",
        QUDAO_PII_KEY="e2e-test-key",
        QUDAO_REPORTS_DIR=str(tmp / "reports"),
    )
    assert _qudao(env, "warehouse", "init").returncode == 0
    serialized = _qudao(env, "airflow", "dags", "reserialize")
    assert serialized.returncode == 0, serialized.stderr[-2000:]
    unpaused = _qudao(env, "airflow", "dags", "unpause", "channel_reports")  # paused DAGs queue nothing
    assert unpaused.returncode == 0, unpaused.stderr[-2000:]
    good = _qudao(env, "run", "--landing", str(landing), "--date", str(GOOD))
    bad = _qudao(env, "run", "--landing", str(landing), "--date", str(BAD))
    yield {"env": env, "good": good, "bad": bad, "airflow_db": tmp / "home" / "airflow" / "airflow.db"}
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}" with (force)')


def test_only_the_published_night_emits_and_queues_the_reports(nights: dict) -> None:
    assert nights["good"].returncode == 0, nights["good"].stdout[-3000:] + nights["good"].stderr[-2000:]
    assert nights["bad"].returncode == 1 and "not run:" in nights["bad"].stdout
    db = nights["airflow_db"]
    events = airflow_rows(
        db,
        "select e.extra from asset_event e join asset a on a.id = e.asset_id"
        f" where a.name = '{PUBLISHED_MARTS.name}'",
    )
    assert [json.loads(extra) for (extra,) in events] == [{"business_date": GOOD.isoformat()}]
    consumers = airflow_rows(
        db,
        "select r.dag_id from dag_schedule_asset_reference r join asset a on a.id = r.asset_id"
        f" where a.name = '{PUBLISHED_MARTS.name}'",
    )
    assert consumers == [("channel_reports",)]
    queued = airflow_rows(
        db,
        "select q.target_dag_id from asset_dag_run_queue q join asset a on a.id = q.asset_id"
        f" where a.name = '{PUBLISHED_MARTS.name}'",
    )
    assert queued == [("channel_reports",)]
