-- Every delivered call row, renamed and normalised; the phone only as a keyed hash.
with source_rows as (
    select * from {{ source('call_center', 'calls') }}
),

normalised as (
    select
        trim(call_id) as call_id,
        lower(trim(direction)) as direction,
        lower(trim(call_type)) as call_type,
        nullif(trim(partner_id), '') as partner_id,
        {{ hash_pii(normalize_phone_e164('customer_phone')) }} as customer_phone_hash,
        trim(agent_id) as agent_id,
        started_at,
        ended_at,
        duration_seconds,
        lower(trim(outcome)) as outcome,
        satisfaction,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
