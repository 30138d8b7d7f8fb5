{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['filing_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['filing_id'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(
        ref('stg_crm__channel_filings_deliveries'), ['filing_id'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per channel filing, its latest version.
-- Incremental: a night recomputes the filings delivered in it.
-- the latest version of each key, from stg_* (only the night's keys in an incremental run)
with latest as (
    {{ rows_of_touched_keys(
        ref('stg_crm__channel_filings'), ref('stg_crm__channel_filings_deliveries'), ['filing_id'],
        is_incremental(), this, 'last_delivered_date'
    ) }}
),

filings as (
    select
        filing_id,
        partner_id,
        filing_type,
        status,
        submitted_at,
        {{ local_date('submitted_at') }} as submitted_date,
        approved_at,
        {{ local_date('approved_at') }} as approved_date,
        round(
            (extract(epoch from approved_at - submitted_at) / 3600.0)::numeric, 1
        )::numeric(10, 1) as hours_to_approve,
        approver_id,
        updated_at,
        _business_date as last_delivered_date
    from latest
)

select
    filing_id,
    partner_id,
    filing_type,
    status,
    submitted_at,
    submitted_date,
    approved_at,
    approved_date,
    hours_to_approve,
    approver_id,
    updated_at,
    last_delivered_date
from filings
