{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['visit_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['visit_id'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(
        ref('stg_crm__visits_deliveries'), ['visit_id'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per visit, its latest version; dated in Asia/Shanghai.
-- Incremental: a night recomputes the visits delivered in it.
-- the latest version of each key, from stg_* (only the night's keys in an incremental run)
with latest as (
    {{ rows_of_touched_keys(
        ref('stg_crm__visits'), ref('stg_crm__visits_deliveries'), ['visit_id'],
        is_incremental(), this, 'last_delivered_date'
    ) }}
),

visits as (
    select
        visit_id,
        manager_id,
        partner_id,
        visit_type,
        visit_type = 'inspection' as is_inspection,
        visited_at,
        {{ local_date('visited_at') }} as visit_date,
        {{ iso_week_start(local_date('visited_at')) }} as week_start,
        duration_minutes,
        issues_found,
        updated_at,
        _business_date as last_delivered_date
    from latest
)

select
    visit_id,
    manager_id,
    partner_id,
    visit_type,
    is_inspection,
    visited_at,
    visit_date,
    week_start,
    duration_minutes,
    issues_found,
    updated_at,
    last_delivered_date
from visits
