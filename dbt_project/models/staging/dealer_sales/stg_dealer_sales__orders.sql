-- One row per order line: the latest version delivered.
-- The one place "latest" is decided; the facts read it for the keys a night touched.
{%- set columns = [
    'order_id', 'order_line', 'order_date', 'seller_partner_id', 'buyer_partner_id', 'sku', 'quantity',
    'unit_price', 'status', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('stg_dealer_sales__orders_deliveries'), ['order_id', 'order_line'], columns) }}
)

select * from latest
