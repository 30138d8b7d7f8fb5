-- The loads whose rows are in raw now: one row per current file (loaded, not replaced by a
-- corrected file of its date, at least one row). With stg_ops__superseded_loads, the door to
-- ops.load_manifest.
with manifest as (
    select * from {{ source('ops', 'load_manifest') }}
),

current_loads as (
    select
        load_id,
        source,
        entity,
        business_date,
        rows_loaded
    from manifest
    where
        status = 'loaded'
        and superseded_at is null
        and rows_loaded > 0
)

select * from current_loads
