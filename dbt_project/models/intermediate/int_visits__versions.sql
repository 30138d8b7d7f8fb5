{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['visit_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['visit_id']}, {'columns': ['known_from_date']}],
    post_hook="{{ delete_vanished_versions(ref('stg_crm__visits_deliveries'), ['visit_id']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct visit version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys it touched (see rows_of_touched_keys).
with deliveries as (
    {{ rows_of_touched_keys(
        ref('stg_crm__visits_deliveries'), ref('stg_crm__visits_deliveries'),
        ['visit_id'], is_incremental(), this
    ) }}
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
