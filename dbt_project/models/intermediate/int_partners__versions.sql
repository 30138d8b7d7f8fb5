{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['partner_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['partner_id']}, {'columns': ['known_from_date']}],
    post_hook="{{ delete_vanished_versions(ref('stg_crm__partners_deliveries'), ['partner_id']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct partner version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys whose delivered version changed (see
-- rows_of_touched_keys); a snapshot that repeats the current version touches nothing.
{%- set attributes = ['partner_name', 'tier', 'parent_partner_id', 'region_code', 'industry', 'status',
  'signed_date', 'terminated_date', 'channel_manager_id', 'contact_phone_hash'] %}

with deliveries as (
    {{ rows_of_touched_keys(
        ref('stg_crm__partners_deliveries'), ref('stg_crm__partners_deliveries'),
        ['partner_id'], is_incremental(), this,
        snapshot_columns=['updated_at'] + attributes
    ) }}
),

intervals as (
    {{ version_intervals('deliveries', ['partner_id'], ['updated_at'], attributes) }}
)

select * from intervals
