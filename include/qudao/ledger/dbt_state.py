"""``ops.dbt_state``: what the warehouse's dbt builds have done, as name/value pairs.

``seeds_sha256`` (the seed files the warehouse holds) and ``tested_in_full`` (a build
with every test on every row succeeded). :mod:`qudao.transform` reads them to plan a
night and writes them after a successful build.
"""

from __future__ import annotations

import psycopg

from qudao.ledger.migrate import ensure_current

SEEDS_SHA256 = "seeds_sha256"
TESTED_IN_FULL = "tested_in_full"


def read_state(conn: psycopg.Connection) -> dict[str, str]:
    """Every name and value of ``ops.dbt_state`` (empty on a new warehouse)."""
    ensure_current(conn)  # also adds ops.dbt_state to older warehouses
    return dict(conn.execute("select name, value from ops.dbt_state").fetchall())


def save_state(conn: psycopg.Connection, values: dict[str, str]) -> None:
    """Insert or replace the given names."""
    ensure_current(conn)
    for name, value in values.items():
        conn.execute(
            "insert into ops.dbt_state (name, value) values (%s, %s)"
            " on conflict (name) do update set value = excluded.value, updated_at = now()",
            (name, value),
        )
