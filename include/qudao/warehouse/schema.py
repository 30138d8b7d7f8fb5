"""The ``raw`` tables' DDL, from the contracts.

The ``ops`` schema is the ledger's (:mod:`qudao.ledger.migrations`);
:func:`ensure_schema` is the one entry point that makes a warehouse current.
dbt owns ``staging``, ``intermediate``, ``marts_candidate``; publishing owns ``marts``.
"""

from __future__ import annotations

import psycopg

from qudao.contracts import PG_TYPES, RAW_METADATA_COLUMNS, Entity


def raw_table_ddl(entity: Entity) -> str:
    """``create table if not exists raw.<source>__<entity>`` from the contract.

    Load ids and business dates grow as files are appended, so one BRIN index on both
    finds a load's or a date's rows at a fraction of a B-tree's cost during COPY (a BRIN
    index serves a query on any of its columns). Autovacuum summarises each range of
    pages once the load has moved past it (``autosummarize``); until then a range matches
    every query, and the unsummarised ranges are the newest load's. A range is 512 pages
    (4 MiB), so a night of millions of rows asks autovacuum for a few dozen summaries
    (it queues 256 at most). There is no index on the key: a night reads from raw only
    its new loads' rows (through the BRIN on ``_load_id``) into staging's
    ``stg_<source>__<entity>_deliveries`` tables, which carry the key index the nightly
    per-key reads use (migration 0007 dropped raw's, issue 12; 0008 the two one-column
    BRIN indexes).
    """
    cols = [f"    {c.name} {PG_TYPES[c.type]}" for c in entity.columns]
    cols += [f"    {name} {ddl}" for name, ddl in RAW_METADATA_COLUMNS]
    body = ",\n".join(cols)
    table = f"raw.{entity.raw_table}"
    return f"create table if not exists {table} (\n{body}\n);\n" + "".join(
        f"create index if not exists {index} on {table} using brin ({', '.join(columns)})"
        f" with (pages_per_range = {BRIN_PAGES_PER_RANGE}, autosummarize = on);\n"
        for index, columns in raw_brin_indexes(entity).items()
    )


#: heap pages one BRIN summary covers (PostgreSQL's default is 128)
BRIN_PAGES_PER_RANGE = 512


def raw_brin_indexes(entity: Entity) -> dict[str, tuple[str, ...]]:
    """The BRIN index of ``raw.<entity>``: index name -> columns."""
    return {f"{entity.raw_table}_load_date": ("_load_id", "_business_date")}


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create every platform schema and table that does not exist yet; apply ``ops`` migrations.

    The work is :func:`qudao.ledger.migrate.ensure_warehouse`'s (imported here when called:
    the ledger sits above this layer); this name stays for the callers that have it.
    """
    from qudao.ledger.migrate import ensure_warehouse

    ensure_warehouse(conn)
