{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['snapshot_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['snapshot_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per reported (snapshot_date, partner, sku): stock, trailing sell-out, days of
-- supply and health band. Sell-out counts real order lines where the partner is seller,
-- as known on snapshot_date. The band is taken on days_of_supply as published (one decimal).
{%- set window = var('sellout_window_days') %}

with snapshots as (
    select
        snapshot_date,
        partner_id,
        sku,
        on_hand_qty,
        in_transit_qty
    from {{ ref('fct_inventory_snapshots') }}
    where snapshot_date between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

seller_lines as (
    select
        seller_partner_id,
        sku,
        order_date,
        quantity,
        known_from_date,
        known_to_date
    from {{ ref('int_order_lines__versions') }}
    where
        is_real
        and order_date > {{ run_start_date(is_incremental()) }} - {{ window }}
        and order_date <= {{ run_end_date() }}
),

sellout as (
    select
        snapshots.snapshot_date,
        snapshots.partner_id,
        snapshots.sku,
        snapshots.on_hand_qty,
        snapshots.in_transit_qty,
        coalesce(sum(order_lines.quantity), 0)::integer as sellout_28d_qty
    from snapshots
    left join seller_lines as order_lines
        on
            snapshots.partner_id = order_lines.seller_partner_id
            and snapshots.sku = order_lines.sku
            and order_lines.order_date > snapshots.snapshot_date - {{ window }}
            and snapshots.snapshot_date >= order_lines.order_date
            and snapshots.snapshot_date >= order_lines.known_from_date
            and snapshots.snapshot_date < order_lines.known_to_date
    group by
        snapshots.snapshot_date, snapshots.partner_id, snapshots.sku,
        snapshots.on_hand_qty, snapshots.in_transit_qty
),

supply as (
    select
        snapshot_date,
        partner_id,
        sku,
        on_hand_qty,
        in_transit_qty,
        sellout_28d_qty,
        round(sellout_28d_qty::numeric / {{ window }}, 4)::numeric(14, 4) as avg_daily_sellout,
        -- the cast is outside the case: a case drops the typmod, and the incremental run
        -- compares the column types with the contracted table
        (case
            when sellout_28d_qty > 0
                then round(on_hand_qty::numeric * {{ window }} / sellout_28d_qty, 1)
        end)::numeric(10, 1) as days_of_supply
    from sellout
),

health as (
    select
        snapshot_date,
        partner_id,
        sku,
        on_hand_qty,
        in_transit_qty,
        sellout_28d_qty,
        avg_daily_sellout,
        days_of_supply,
        case
            when on_hand_qty = 0 then 'stockout'
            when sellout_28d_qty = 0 then 'no_movement'
            when days_of_supply < {{ var('days_of_supply_low') }} then 'low'
            when days_of_supply <= {{ var('days_of_supply_high') }} then 'healthy'
            else 'overstock'
        end as health_band
    from supply
)

select
    snapshot_date,
    partner_id,
    sku,
    on_hand_qty,
    in_transit_qty,
    sellout_28d_qty,
    avg_daily_sellout,
    days_of_supply,
    health_band
from health
