-- The loads replaced by a corrected file of their date: their rows left raw then.
with manifest as (
    select * from {{ source('ops', 'load_manifest') }}
),

superseded_loads as (
    select
        load_id,
        source,
        entity,
        business_date,
        superseded_by
    from manifest
    where superseded_at is not null
)

select * from superseded_loads
