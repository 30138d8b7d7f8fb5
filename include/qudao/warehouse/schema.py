"""The platform's own schemas: ``raw`` tables from the contracts, ``ops`` tables.

:func:`ensure_schema` is idempotent and cheap; every entry point calls it.
dbt owns ``staging``, ``intermediate``, ``marts_candidate``; publishing owns ``marts``.
"""

from __future__ import annotations

import logging

import psycopg

from qudao.constants import INTERMEDIATE_SCHEMA, SCHEMAS, STAGING_SCHEMA
from qudao.contracts import ENTITIES, PG_TYPES, RAW_METADATA_COLUMNS, RETIRED_RAW_COLUMNS, Entity

log = logging.getLogger("qudao.warehouse")


OPS_DDL = """
create table if not exists ops.load_manifest (
    load_id        bigserial primary key,
    source         text not null,
    entity         text not null,
    business_date  date not null,
    path           text not null,
    file_name      text not null,
    sha256         text not null,
    size_bytes     bigint not null,
    encoding       text,
    status         text not null check (status in ('loading', 'loaded', 'skipped_duplicate', 'refused')),
    rows_in        bigint,
    rows_loaded    bigint,
    rows_rejected  bigint,
    error          text,
    quarantined_to text,
    started_at     timestamptz not null default now(),
    finished_at    timestamptz
);
-- written by qudao.ingest: share of a file's rows rejected, the threshold it was held to,
-- and whether it went over (the quality gate fails the night on current rows with
-- over_threshold or status 'refused'); superseded_* mark rows a later delivery replaced.
alter table ops.load_manifest add column if not exists reject_share double precision;
alter table ops.load_manifest add column if not exists reject_threshold double precision;
alter table ops.load_manifest add column if not exists over_threshold boolean not null default false;
alter table ops.load_manifest add column if not exists drift_columns text[];
alter table ops.load_manifest add column if not exists duplicate_of bigint;
alter table ops.load_manifest add column if not exists superseded_by bigint;
alter table ops.load_manifest add column if not exists superseded_at timestamptz;
-- physical lines after the header, counted on the file's bytes: each is a record (rows_in),
-- blank, or a later line of a record spanning lines; the loader refuses a file otherwise
alter table ops.load_manifest add column if not exists lines_in bigint;
alter table ops.load_manifest add column if not exists lines_blank bigint;
alter table ops.load_manifest add column if not exists lines_continued bigint;
-- files in a date folder whose names match no contract entity are listed as 'unexpected'
do $ddl$ begin
    if not exists (
        select 1 from pg_constraint
        where conname = 'load_manifest_status_check'
          and pg_get_constraintdef(oid) like '%unexpected%'
    ) then
        alter table ops.load_manifest drop constraint if exists load_manifest_status_check;
        alter table ops.load_manifest add constraint load_manifest_status_check check (
            status in ('loading', 'loaded', 'skipped_duplicate', 'refused', 'unexpected')
        );
    end if;
end $ddl$;
do $ddl$ begin
    if not exists (select 1 from pg_constraint where conname = 'load_manifest_rows_reconcile') then
        alter table ops.load_manifest add constraint load_manifest_rows_reconcile check (
            status <> 'loaded'
            or (rows_in is not null and rows_in = rows_loaded + rows_rejected)
        );
    end if;
end $ddl$;
create index if not exists load_manifest_date on ops.load_manifest (business_date, source, entity);
create index if not exists load_manifest_sha on ops.load_manifest (sha256);
create or replace view ops.load_manifest_current as
    select * from ops.load_manifest where superseded_at is null;
-- what every raw row's file is: join raw.<table>._load_id = ops.raw_files.load_id
create or replace view ops.raw_files as
    select
        load_id,
        source,
        entity,
        business_date,
        source || '/' || business_date::text || '/' || file_name as source_file,
        sha256 as file_sha256,
        coalesce(finished_at, started_at) as loaded_at,
        path,
        size_bytes,
        encoding
    from ops.load_manifest
    where status = 'loaded';
comment on view ops.raw_files is
    'One row per loaded file: join raw tables on _load_id = load_id for a row''s file and checksum.';

create table if not exists ops.rejected_rows (
    load_id        bigint not null,
    source         text not null,
    entity         text not null,
    business_date  date not null,
    file_name      text not null,
    line_number    integer not null,
    raw_text       text not null,
    reason         text not null,
    rejected_at    timestamptz not null default now()
);
create index if not exists rejected_rows_load on ops.rejected_rows (load_id);
create index if not exists rejected_rows_date on ops.rejected_rows (business_date, entity);

create table if not exists ops.schema_drift (
    load_id        bigint not null,
    source         text not null,
    entity         text not null,
    business_date  date not null,
    file_name      text not null,
    column_name    text not null,
    kind           text not null,
    detected_at    timestamptz not null default now()
);

create table if not exists ops.run_log (
    run_id         text not null,
    business_date  date not null,
    step           text not null,
    status         text not null,
    detail         jsonb,
    logged_at      timestamptz not null default now()
);
create index if not exists run_log_date on ops.run_log (business_date, logged_at);

create table if not exists ops.quality_results (
    run_id         text not null,
    business_date  date not null,
    suite          text not null,
    check_name     text not null,
    severity       text not null check (severity in ('error', 'warn')),
    passed         boolean not null,
    observed       text,
    expected       text,
    detail         text,
    checked_at     timestamptz not null default now()
);
create index if not exists quality_results_run on ops.quality_results (run_id);

-- written by qudao.transform.build after a successful dbt build: the seeds' checksum
-- (seeds are reloaded only when their files change) and whether the models were ever
-- built and tested in full (until then, a build tests every row, not just the night's).
create table if not exists ops.dbt_state (
    name           text primary key,
    value          text not null,
    updated_at     timestamptz not null default now()
);

create table if not exists ops.publish_log (
    publish_id     bigserial primary key,
    run_id         text not null,
    business_date  date not null,
    status         text not null,
    tables         jsonb not null,
    published_at   timestamptz not null default now()
);
-- what the published build read, per published date (qudao.night_inputs): a night whose
-- inputs still have this fingerprint is skipped by qudao run
alter table ops.publish_log add column if not exists inputs jsonb;
"""

# HMAC-SHA256 on the built-in sha256() (no pgcrypto needed: the embedded server
# does not ship it). Used by dbt staging to hash phone numbers with a secret key.
HMAC_DDL = """
create or replace function ops.hmac_sha256_hex(message text, secret text)
returns text language plpgsql immutable strict parallel safe as $fn$
declare
    key bytea := convert_to(secret, 'UTF8');
    ipad bytea;
    opad bytea;
    i int;
begin
    if length(key) > 64 then
        key := sha256(key);
    end if;
    key := key || decode(repeat('00', 64 - length(key)), 'hex');
    ipad := key;
    opad := key;
    for i in 0..63 loop
        ipad := set_byte(ipad, i, get_byte(key, i) # 54);
        opad := set_byte(opad, i, get_byte(key, i) # 92);
    end loop;
    return encode(sha256(opad || sha256(ipad || convert_to(message, 'UTF8'))), 'hex');
end
$fn$;
"""


def raw_table_ddl(entity: Entity) -> str:
    """``create table if not exists raw.<source>__<entity>`` from the contract.

    Load ids and business dates grow as files are appended, so BRIN indexes find a
    load's or a date's rows at a fraction of a B-tree's cost during COPY. A B-tree on the
    contract's key, as the staging models normalise it (text keys trimmed), lets a night
    read every delivery of the keys it touched without scanning the history.
    """
    cols = [f"    {c.name} {PG_TYPES[c.type]}" for c in entity.columns]
    cols += [f"    {name} {ddl}" for name, ddl in RAW_METADATA_COLUMNS]
    body = ",\n".join(cols)
    table = f"raw.{entity.raw_table}"
    key = ", ".join(raw_key_expressions(entity))
    return (
        f"create table if not exists {table} (\n{body}\n);\n"
        + "".join(
            f"create index if not exists {index} on {table} using brin ({column});\n"
            for index, column in raw_brin_indexes(entity).items()
        )
        + f"create index if not exists {entity.raw_table}_key on {table} ({key});\n"
    )


def raw_brin_indexes(entity: Entity) -> dict[str, str]:
    """The BRIN indexes of ``raw.<entity>``: index name -> column."""
    return {f"{entity.raw_table}_load": "_load_id", f"{entity.raw_table}_date": "_business_date"}


def raw_key_expressions(entity: Entity) -> list[str]:
    """The entity's key as the staging models compute it: ``(trim(x))`` for text columns."""
    types = {c.name: PG_TYPES[c.type] for c in entity.columns}
    return [f"(trim({k}))" if types[k] == "text" else k for k in entity.key]


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create every platform schema and table that does not exist yet."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('qudao.ensure_schema'))")
        for schema in SCHEMAS:
            conn.execute(f"create schema if not exists {schema}")
        conn.execute(OPS_DDL)
        conn.execute(HMAC_DDL)
        for e in ENTITIES:
            conn.execute(raw_table_ddl(e))
            _retire_per_file_columns(conn, e)


def _retire_per_file_columns(conn: psycopg.Connection, entity: Entity) -> None:
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
