"""The ops tables ``warehouse/schema.py`` created up to the previous release: loads, rejects,
drift, runs, check results, dbt state, publishes (idempotent, so it adopts any earlier warehouse)."""

SQL = """
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
