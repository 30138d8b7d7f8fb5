-- One row per product (sku), its latest version.
with products as (
    select
        sku,
        product_name,
        category,
        unit,
        list_price,
        updated_at
    from {{ ref('stg_crm__products') }}
)

select
    sku,
    product_name,
    category,
    unit,
    list_price,
    updated_at
from products
