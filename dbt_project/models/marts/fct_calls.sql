-- One row per call, its latest delivery; the customer phone only as a keyed hash.
with calls as (
    select
        call_id,
        direction,
        call_type,
        partner_id,
        customer_phone_hash,
        agent_id,
        started_at,
        {{ local_date('started_at') }} as call_date,
        ended_at,
        duration_seconds,
        outcome,
        satisfaction
    from {{ ref('stg_call_center__calls') }}
)

select
    call_id,
    direction,
    call_type,
    partner_id,
    customer_phone_hash,
    agent_id,
    started_at,
    call_date,
    ended_at,
    duration_seconds,
    outcome,
    satisfaction
from calls
