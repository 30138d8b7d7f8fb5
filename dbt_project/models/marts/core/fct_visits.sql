{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['visit_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['visit_id'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(ref('base_crm__visits'), ['visit_id'], 'last_delivered_date') }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per visit, its latest version; dated in Asia/Shanghai.
-- Incremental: a night recomputes the visits delivered in it.
{%- set columns = [
    'visit_id', 'manager_id', 'partner_id', 'visit_type', 'visited_at', 'duration_minutes',
    'issues_found', 'updated_at', '_business_date'
] %}

with deliveries as (
    {{ deliveries_of_touched_keys(
        ref('base_crm__visits'), ['visit_id'], is_incremental(), this, 'last_delivered_date'
    ) }}
),

latest as (
    {{ latest_version('deliveries', ['visit_id'], columns) }}
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
