-- Every delivered order-line row, renamed and normalised.
with source_rows as (
    select * from {{ source('dealer_sales', 'orders') }}
),

normalised as (
    select
        trim(order_id) as order_id,
        order_line,
        order_date,
        trim(seller_partner_id) as seller_partner_id,
        nullif(trim(buyer_partner_id), '') as buyer_partner_id,
        trim(sku) as sku,
        quantity,
        unit_price,
        lower(trim(status)) as status,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
