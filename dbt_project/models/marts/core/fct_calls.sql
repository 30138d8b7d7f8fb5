{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['call_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['call_id'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(
        ref('stg_call_center__calls_deliveries'), ['call_id'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per call, its latest delivery; the customer phone only as a keyed hash.
-- Incremental: a night recomputes the calls delivered in it.
-- the latest version of each key, from stg_* (only the night's keys in an incremental run)
with latest as (
    {{ rows_of_touched_keys(
        ref('stg_call_center__calls'), ref('stg_call_center__calls_deliveries'), ['call_id'],
        is_incremental(), this, 'last_delivered_date'
    ) }}
),

calls as (
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
        satisfaction,
        _business_date as last_delivered_date
    from latest
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
    satisfaction,
    last_delivered_date
from calls
