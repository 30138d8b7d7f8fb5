{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['visit_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['visit_id']}, {'columns': ['known_from_date']}],
    post_hook="{{ delete_vanished_versions(ref('base_crm__visits'), ['visit_id']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct visit version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys it touched (see deliveries_of_touched_keys).
with deliveries as (
    {{ deliveries_of_touched_keys(ref('base_crm__visits'), ['visit_id'], is_incremental(), this) }}
),

intervals as (
    {{ version_intervals(
        'deliveries', ['visit_id'], ['updated_at'],
        ['manager_id', 'partner_id', 'visit_type', 'visited_at', 'duration_minutes', 'issues_found']
    ) }}
),

dated as (
    select
        *,
        {{ local_date('visited_at') }} as visit_date
    from intervals
)

select * from dated
