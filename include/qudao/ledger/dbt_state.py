"""``ops.dbt_state``: what the warehouse's dbt builds have done, as name/value pairs.

``seeds_sha256`` (the seed files the warehouse holds), ``tested_in_full`` (a build
with every test on every row succeeded), ``views_sha256`` (the project files the
warehouse's views were created from) and ``view_relations`` (those views, a JSON
list). :mod:`qudao.transform` reads them to plan a night and writes them after a
successful build.
"""

from __future__ import annotations

import json

import psycopg

from qudao.ledger.migrate import ensure_current

SEEDS_SHA256 = "seeds_sha256"
TESTED_IN_FULL = "tested_in_full"
VIEWS_SHA256 = "views_sha256"
VIEW_RELATIONS = "view_relations"


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


def view_relations(state: dict[str, str]) -> list[str]:
    """The views the last successful build left, as ``"schema"."name"`` (none recorded: empty)."""
    return json.loads(state.get(VIEW_RELATIONS) or "[]")


def relations_exist(conn: psycopg.Connection, relations: list[str]) -> bool:
    """Every one of ``relations`` exists (an empty list does not count as there)."""
    if not relations:
        return False
    row = conn.execute(
        "select count(*) from unnest(%s::text[]) as r (name) where to_regclass(r.name) is not null",
        (relations,),
    ).fetchone()
    return row is not None and row[0] == len(relations)
