"""The one entry point that makes a warehouse current: schemas, ``ops`` migrations, raw tables.

``ops.schema_migrations`` records each applied migration (version, name, checksum).
:func:`ensure_warehouse` applies the missing ones in order under one advisory lock, in
one transaction with the raw tables' DDL, so concurrent starts serialise and a
failure leaves the warehouse as it was. Once current, a call costs one lock and one
read of ``ops.schema_migrations`` plus the raw tables' ``if not exists`` DDL.
"""

from __future__ import annotations

import logging

import psycopg

from qudao.constants import SCHEMAS
from qudao.contracts import ENTITIES
from qudao.ledger.migrations import Migration, migrations
from qudao.ledger.raw_upgrade import retire_per_file_columns
from qudao.warehouse.schema import raw_table_ddl

log = logging.getLogger("qudao.ledger")

_LOCK = "select pg_advisory_xact_lock(hashtext('qudao.ensure_schema'))"

_RECORD_DDL = """
create table if not exists ops.schema_migrations (
    version     integer primary key,
    name        text not null,
    checksum    text not null,
    applied_at  timestamptz not null default now()
)
"""


def applied_versions(conn: psycopg.Connection) -> dict[int, str]:
    """``{version: checksum}`` of the migrations this warehouse recorded (empty before any)."""
    if conn.execute("select to_regclass('ops.schema_migrations') is null").fetchone()[0]:
        return {}
    return dict(conn.execute("select version, checksum from ops.schema_migrations").fetchall())


def apply_migrations(conn: psycopg.Connection) -> list[Migration]:
    """Apply the migrations this warehouse lacks, in order; the ones applied now.

    Call inside a transaction holding the ensure lock (:func:`ensure_warehouse` does).
    """
    conn.execute(_RECORD_DDL)
    done = applied_versions(conn)
    applied = []
    for m in migrations():
        if m.version in done:
            if done[m.version] != m.checksum:
                log.warning("ops migration %04d_%s changed after it was applied here", m.version, m.name)
            continue
        conn.execute(m.sql)
        conn.execute(
            "insert into ops.schema_migrations (version, name, checksum) values (%s, %s, %s)",
            (m.version, m.name, m.checksum),
        )
        applied.append(m)
    if applied:
        log.info("ops migrations applied: %s", ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
    return applied


def ensure_ops(conn: psycopg.Connection) -> list[Migration]:
    """Create the platform schemas and apply missing ``ops`` migrations (no raw tables).

    What a writer of the ledger needs (an alert about a broken load must not wait on raw DDL).
    """
    with conn.transaction():
        conn.execute(_LOCK)
        for schema in SCHEMAS:
            conn.execute(f"create schema if not exists {schema}")
        return apply_migrations(conn)


#: warehouses this process brought up to date: (host, port, database)
_CURRENT: set[tuple[str, int, str]] = set()


def ensure_current(conn: psycopg.Connection) -> None:
    """:func:`ensure_ops` once per process and warehouse: writers call it, not DDL per row."""
    info = conn.info
    key = (info.host, info.port, info.dbname)
    if key not in _CURRENT:
        ensure_ops(conn)
        _CURRENT.add(key)


def ensure_warehouse(conn: psycopg.Connection) -> list[Migration]:
    """Create every platform schema, apply missing ``ops`` migrations, create raw tables.

    Idempotent; every entry point calls it (through :func:`qudao.warehouse.schema.ensure_schema`).
    Returns the migrations applied by this call.
    """
    with conn.transaction():
        conn.execute(_LOCK)
        for schema in SCHEMAS:
            conn.execute(f"create schema if not exists {schema}")
        applied = apply_migrations(conn)
        for e in ENTITIES:
            conn.execute(raw_table_ddl(e))
            retire_per_file_columns(conn, e)
    return applied
