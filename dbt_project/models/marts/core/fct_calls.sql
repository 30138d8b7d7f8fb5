{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['call_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['call_id'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(ref('base_call_center__calls'), ['call_id'], 'last_delivered_date') }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per call, its latest delivery; the customer phone only as a keyed hash.
-- Incremental: a night recomputes the calls delivered in it.
{%- set columns = [
    'call_id', 'direction', 'call_type', 'partner_id', 'customer_phone_hash', 'agent_id', 'started_at',
    'ended_at', 'duration_seconds', 'outcome', 'satisfaction', '_business_date'
] %}

with deliveries as (
    {{ deliveries_of_touched_keys(
        ref('base_call_center__calls'), ['call_id'], is_incremental(), this, 'last_delivered_date'
    ) }}
),

latest as (
    {{ latest_version('deliveries', ['call_id'], columns, version_order='_business_date desc') }}
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
