"""End to end: ``qudao run`` for a past night without extracts fails at once, naming them.

The extracts deadline stays at its default (4 hours): the run must end within this
test's timeout because the night's publish deadline has passed, not because a short
deadline was configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse.connection import with_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DELIVERED, NOT_DELIVERED = date(2026, 2, 2), date(2026, 2, 3)


def test_a_past_night_without_extracts_fails_fast(server_url: str, tmp_path: Path) -> None:
    from qudao_demo import generate

    landing = tmp_path / "landing"
    generate(landing, DELIVERED, DELIVERED, scale="small", seed=2)
    database = f"qudao_e2e_fast_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}"')
        admin.execute(f'create database "{database}"')
    env = {k: v for k, v in os.environ.items() if k != "QUDAO_EXTRACTS_DEADLINE_SECONDS"}
    env.update(
        QUDAO_HOME=str(tmp_path / "home"),
        QUDAO_WAREHOUSE_URL=with_database(server_url, database),
        QUDAO_PII_KEY="e2e-test-key",
    )
    command = ["run", "--landing", str(landing), "--date", str(NOT_DELIVERED)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "qudao.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=800,
        )
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{database}" with (force)')
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    assert "failed: wait_for_extracts" in out, out[-3000:]
    assert "after its publish deadline 2026-02-04 07:00 Asia/Shanghai" in out, out[-3000:]
    assert "missing crm.channel_managers, crm.products" in out and "dealer_sales.orders" in out
    assert "load_crm_extracts" in out  # not run: listed among the tasks after the failure
