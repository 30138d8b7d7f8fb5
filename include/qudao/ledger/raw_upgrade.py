"""Upgrade a raw table of an earlier release: drop the per-file columns it repeated per row.

Part of :func:`qudao.ledger.migrate.ensure_warehouse`: whether a column may go depends on
``ops.load_manifest`` (the ledger's), so it lives here rather than in ``warehouse``.
"""

from __future__ import annotations

import logging

import psycopg

from qudao.constants import INTERMEDIATE_SCHEMA, STAGING_SCHEMA
from qudao.contracts import RETIRED_RAW_COLUMNS, Entity

log = logging.getLogger("qudao.warehouse")


def retire_per_file_columns(conn: psycopg.Connection, entity: Entity) -> None:
    """Migrate a raw table of an earlier release: drop the per-file columns it repeated per row.

    Nothing is lost: every row's file name, checksum and load time are its load's, in
    ``ops.load_manifest`` (``ops.raw_files``); rows whose load is not there keep them.
    """
    present = {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw'"
            " and table_name = %s and column_name = any(%s)",
            (entity.raw_table, list(RETIRED_RAW_COLUMNS)),
        )
    }
    if not present:
        return
    table = f"raw.{entity.raw_table}"
    orphans = conn.execute(
        f"select count(*) from {table} r where not exists"
        " (select 1 from ops.load_manifest m where m.load_id = r._load_id and m.status = 'loaded')"
    ).fetchone()[0]
    views = _views_reading(conn, table, sorted(present))
    foreign = sorted(name for name, schema in views if schema not in DBT_VIEW_SCHEMAS)
    if orphans or foreign:  # keep what only these rows know; new loads leave the columns null
        log.warning(
            "%s: columns %s kept (nullable): %s",
            table,
            ", ".join(sorted(present)),
            f"{orphans} rows belong to no loaded file of ops.load_manifest"
            if orphans
            else f"views outside dbt's schemas read them: {', '.join(foreign)}",
        )
        relax = (f"alter column {c} drop not null, alter column {c} drop default" for c in sorted(present))
        conn.execute(f"alter table {table} " + ", ".join(relax))
        return
    if views:  # dbt's staging views expanded `select *` over the old columns; the next build recreates them
        conn.execute("drop view if exists " + ", ".join(name for name, _ in views) + " cascade")
    conn.execute(f"alter table {table} " + ", ".join(f"drop column {c}" for c in sorted(present)))


#: schemas whose views dbt recreates on every build (a migration may drop them)
DBT_VIEW_SCHEMAS = (STAGING_SCHEMA, INTERMEDIATE_SCHEMA)


def _views_reading(conn: psycopg.Connection, table: str, columns: list[str]) -> list[tuple[str, str]]:
    """Every view that reads ``columns`` of ``table``, and every view built on those: (name, schema)."""
    return conn.execute(
        """
        with recursive readers(oid) as (
            select r.ev_class
            from pg_depend d
            join pg_rewrite r on r.oid = d.objid
            join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
            where d.refobjid = %s::regclass and a.attname = any(%s) and r.ev_class <> d.refobjid
            union
            select r.ev_class
            from readers
            join pg_depend d on d.refobjid = readers.oid
            join pg_rewrite r on r.oid = d.objid
            where r.ev_class <> readers.oid
        )
        select distinct c.oid::regclass::text, n.nspname
        from readers join pg_class c on c.oid = readers.oid join pg_namespace n on n.oid = c.relnamespace
        """,
        (table, columns),
    ).fetchall()
