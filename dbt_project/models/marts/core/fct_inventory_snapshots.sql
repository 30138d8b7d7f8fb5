{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['snapshot_date', 'partner_id', 'sku'],
    on_schema_change='fail',
    indexes=[
        {'columns': ['snapshot_date', 'partner_id', 'sku'], 'unique': True},
        {'columns': ['last_delivered_date']}
    ],
    post_hook="{{ delete_vanished_versions(
        ref('stg_dealer_sales__inventory_deliveries'), ['snapshot_date', 'partner_id', 'sku'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (snapshot_date, partner_id, sku): stock at the end of that day, latest delivery.
-- Incremental: a night recomputes the rows delivered in it.
-- the latest version of each key, from stg_* (only the night's keys in an incremental run)
with latest as (
    {{ rows_of_touched_keys(
        ref('stg_dealer_sales__inventory'), ref('stg_dealer_sales__inventory_deliveries'), ['snapshot_date', 'partner_id', 'sku'],
        is_incremental(), this, 'last_delivered_date'
    ) }}
),

snapshots as (
    select
        snapshot_date,
        partner_id,
        sku,
        on_hand_qty,
        in_transit_qty,
        _business_date as last_delivered_date
    from latest
)

select
    snapshot_date,
    partner_id,
    sku,
    on_hand_qty,
    in_transit_qty,
    last_delivered_date
from snapshots
