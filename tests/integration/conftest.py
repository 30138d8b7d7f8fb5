"""Fixtures shared by the metrics and reports tests: the hand-made nights, published.

``published_nights`` loads the three nights of ``tests/fixtures/marts_numbers``
(Fri 2026-11-06 … Sun 11-08, see its README) into a fresh database, builds them with
dbt, and copies the candidate marts into ``marts`` the way publishing leaves them (a
plain copy: the gate and publish have tests of their own). The metrics read ``marts``
only; the candidate schema is emptied afterwards to prove it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.constants import CANDIDATE_SCHEMA, PUBLISHED_SCHEMA
from qudao.warehouse.connection import with_database
from qudao.warehouse.schema import ensure_schema

NIGHTS = (date(2026, 11, 6), date(2026, 11, 7), date(2026, 11, 8))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marts_numbers"


def publish_copy(url: str) -> None:
    """Copy every candidate table into ``marts`` (created like the candidate) and empty the candidate."""
    with psycopg.connect(url) as c:
        tables = [
            t
            for (t,) in c.execute(
                "select table_name from information_schema.tables"
                " where table_schema = %s and table_type = 'BASE TABLE'",
                [CANDIDATE_SCHEMA],
            )
        ]
        for t in tables:
            c.execute(f'drop table if exists {PUBLISHED_SCHEMA}."{t}"')
            c.execute(f'create table {PUBLISHED_SCHEMA}."{t}" (like {CANDIDATE_SCHEMA}."{t}" including all)')
            c.execute(f'insert into {PUBLISHED_SCHEMA}."{t}" select * from {CANDIDATE_SCHEMA}."{t}"')
            c.execute(f'truncate {CANDIDATE_SCHEMA}."{t}"')


@pytest.fixture(scope="session")
def published_nights(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a database whose ``marts`` hold the three fixture nights."""
    from qudao.ingest.loader import load_date
    from qudao.transform import build

    name = f"qudao_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    with psycopg.connect(url) as c:
        ensure_schema(c)
    landing = tmp_path_factory.mktemp("landing")
    try:
        for d in NIGHTS:
            for folder in sorted(FIXTURES.glob(f"*/{d.isoformat()}")):
                shutil.copytree(folder, landing / folder.parent.name / folder.name)
            report = load_date(url, str(landing), d)
            assert report.ok, report
        result = build(url, NIGHTS[-1], full_refresh=True)
        assert result.success, result.lines()
        publish_copy(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [name])
            admin.execute(f'drop database if exists "{name}"')
