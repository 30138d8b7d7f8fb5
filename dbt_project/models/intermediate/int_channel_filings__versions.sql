{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['filing_id'],
    on_schema_change='fail',
    indexes=[{'columns': ['filing_id']}, {'columns': ['known_from_date']}],
    post_hook="{{ delete_vanished_versions(ref('stg_crm__channel_filings_deliveries'), ['filing_id']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct filing version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys it touched (see rows_of_touched_keys).
with deliveries as (
    {{ rows_of_touched_keys(
        ref('stg_crm__channel_filings_deliveries'), ref('stg_crm__channel_filings_deliveries'),
        ['filing_id'], is_incremental(), this
    ) }}
),

intervals as (
    {{ version_intervals(
        'deliveries', ['filing_id'], ['updated_at'],
        ['partner_id', 'filing_type', 'status', 'submitted_at', 'approved_at', 'approver_id']
    ) }}
)

select * from intervals
