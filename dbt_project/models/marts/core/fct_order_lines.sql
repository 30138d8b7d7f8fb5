{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['order_id', 'order_line'],
    on_schema_change='fail',
    indexes=[{'columns': ['order_id', 'order_line'], 'unique': True}, {'columns': ['last_delivered_date']}],
    post_hook="{{ delete_vanished_versions(
        ref('stg_dealer_sales__orders_deliveries'), ['order_id', 'order_line'], 'last_delivered_date'
    ) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per order line (order_id, order_line), its latest version.
-- Incremental: a night recomputes the lines delivered in it (see rows_of_touched_keys),
-- so its cost follows the night's volume, not the history's.
-- the latest version of each key, from stg_* (only the night's keys in an incremental run)
with latest as (
    {{ rows_of_touched_keys(
        ref('stg_dealer_sales__orders'), ref('stg_dealer_sales__orders_deliveries'), ['order_id', 'order_line'],
        is_incremental(), this, 'last_delivered_date'
    ) }}
),

order_lines as (
    select
        order_id,
        order_line,
        order_date,
        seller_partner_id,
        buyer_partner_id,
        sku,
        quantity,
        unit_price,
        (quantity * unit_price)::numeric(14, 2) as line_amount,
        status,
        {{ is_real_order_line('status') }} as is_real,
        updated_at,
        _business_date as last_delivered_date
    from latest
)

select
    order_id,
    order_line,
    order_date,
    seller_partner_id,
    buyer_partner_id,
    sku,
    quantity,
    unit_price,
    line_amount,
    status,
    is_real,
    updated_at,
    last_delivered_date
from order_lines
