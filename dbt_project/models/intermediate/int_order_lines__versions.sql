{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['order_id', 'order_line'],
    on_schema_change='fail',
    indexes=[
        {'columns': ['order_id', 'order_line']},
        {'columns': ['known_from_date']},
        {'columns': ['buyer_partner_id', 'order_date']},
        {'columns': ['seller_partner_id', 'order_date']},
        {'columns': ['seller_partner_id', 'sku', 'order_date']}
    ],
    post_hook="{{ delete_vanished_versions(ref('stg_dealer_sales__orders_deliveries'), ['order_id', 'order_line']) }}"
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- Every distinct order-line version with the business dates during which it was the one known.
-- Incremental: a night recomputes the keys it touched (see rows_of_touched_keys).
with deliveries as (
    {{ rows_of_touched_keys(
        ref('stg_dealer_sales__orders_deliveries'), ref('stg_dealer_sales__orders_deliveries'),
        ['order_id', 'order_line'], is_incremental(), this
    ) }}
),

intervals as (
    {{ version_intervals(
        'deliveries', ['order_id', 'order_line'], ['updated_at'],
        ['order_date', 'seller_partner_id', 'buyer_partner_id', 'sku', 'quantity', 'unit_price', 'status']
    ) }}
),

flagged as (
    select
        *,
        {{ is_real_order_line('status') }} as is_real,
        (quantity * unit_price)::numeric(14, 2) as line_amount
    from intervals
)

select * from flagged
