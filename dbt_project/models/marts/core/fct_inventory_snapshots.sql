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
        ref('base_dealer_sales__inventory'), ['snapshot_date', 'partner_id', 'sku'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (snapshot_date, partner_id, sku): stock at the end of that day, latest delivery.
-- Incremental: a night recomputes the rows delivered in it.
{%- set columns = [
    'snapshot_date', 'partner_id', 'sku', 'on_hand_qty', 'in_transit_qty', '_business_date'
] %}

with deliveries as (
    {{ deliveries_of_touched_keys(
        ref('base_dealer_sales__inventory'), ['snapshot_date', 'partner_id', 'sku'], is_incremental(), this,
        'last_delivered_date'
    ) }}
),

latest as (
    {{ latest_version(
        'deliveries', ['snapshot_date', 'partner_id', 'sku'], columns, version_order='_business_date desc'
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
