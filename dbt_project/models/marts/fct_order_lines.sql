-- One row per order line (order_id, order_line), its latest version.
with order_lines as (
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
        status in ('placed', 'shipped') as is_real,
        updated_at
    from {{ ref('stg_dealer_sales__orders') }}
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
    updated_at
from order_lines
