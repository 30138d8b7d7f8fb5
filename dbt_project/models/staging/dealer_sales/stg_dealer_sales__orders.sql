-- One row per order line: the latest version delivered.
{%- set columns = [
    'order_id', 'order_line', 'order_date', 'seller_partner_id', 'buyer_partner_id', 'sku', 'quantity',
    'unit_price', 'status', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('base_dealer_sales__orders'), ['order_id', 'order_line'], columns) }}
)

select * from latest
