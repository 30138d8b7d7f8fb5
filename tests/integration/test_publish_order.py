"""Publishing never rewinds: an older date goes out only with the nights published after it.

Stand-in candidate tables and recorded gate verdicts, as in ``test_publish_wap`` (dbt and
the real numbers: ``test_rerun_old_date``).
"""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
import pytest
from test_publish_wap import build_night, checksums, passing_gate, write_manifest

from qudao.publish import PublishRefused, night_scope, publish, rollback
from qudao.warehouse.connection import with_database

pytestmark = pytest.mark.integration

D1, D2, D3, D4 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)


def test_an_older_date_alone_is_refused_and_publishes_with_the_later_nights(db_url, conn, tmp_path) -> None:
    manifest = write_manifest(tmp_path / "manifest.json")
    for d in (D1, D3):  # D2 is never published
        build_night(conn, d)
        passing_gate(conn, f"night-{d}", d)
        publish(db_url, [d], f"night-{d}", manifest)
    scope = night_scope(db_url, D1)
    assert (scope.start_date, scope.run_date, scope.dates) == (D1, D3, (D1, D3))
    assert night_scope(db_url, D2).dates == (D2, D3)
    assert night_scope(db_url, D4).start_date is None and night_scope(db_url, D4).dates == (D4,)
    before = checksums(conn)

    passing_gate(conn, "rerun-alone", D1)
    with pytest.raises(PublishRefused, match=r"without the nights published after it \(2026-11-03\)"):
        publish(db_url, [D1], "rerun-alone", manifest)
    assert checksums(conn) == before
    assert conn.execute("select status from ops.publish_log where run_id = 'rerun-alone'").fetchall() == [
        ("refused",)
    ]

    for d in (D1, D3):
        passing_gate(conn, "rerun", d)
    assert publish(db_url, [D1, D3], "rerun", manifest).business_dates == [D1, D3]
    # after a rollback of D3's publishes the latest night in force is D1's
    rollback(db_url)
    rollback(db_url)
    assert night_scope(db_url, D1).dates == (D1,)


def test_published_nights_of_an_empty_warehouse(server_url) -> None:
    name = f"qudao_t_{uuid.uuid4().hex[:12]}"  # no platform schemas: nothing was ever published
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}"')
        admin.execute(f'create database "{name}"')
    try:
        assert night_scope(with_database(server_url, name), D1).dates == (D1,)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}"')


def test_a_date_published_with_later_nights_counts_as_published_by_the_deadline(
    db_url, conn, tmp_path, monkeypatch
) -> None:
    from qudao.orchestration import tasks

    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)
    manifest = write_manifest(tmp_path / "manifest.json")
    for d in (D1, D2):
        build_night(conn, d)
        passing_gate(conn, "together", d)
    publish(db_url, [D1, D2], "together", manifest)  # logged under its last date, D2
    assert tasks.check_published_by_deadline(D1, "07:00") == {"business_date": str(D1), "published": True}
