{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['manager_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['manager_id']}, {'columns': ['known_from_date']}],
    post_hook="{{ delete_vanished_versions(ref('stg_crm__channel_managers_deliveries'), ['manager_id']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct channel-manager version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys whose delivered version changed (see
-- rows_of_touched_keys); a snapshot that repeats the current version touches nothing.
{%- set attributes = ['manager_name', 'region_code', 'hired_date', 'status'] %}

with deliveries as (
    {{ rows_of_touched_keys(
        ref('stg_crm__channel_managers_deliveries'), ref('stg_crm__channel_managers_deliveries'),
        ['manager_id'], is_incremental(), this,
        snapshot_columns=['updated_at'] + attributes
    ) }}
),

intervals as (
    {{ version_intervals('deliveries', ['manager_id'], ['updated_at'], attributes) }}
)

select * from intervals
