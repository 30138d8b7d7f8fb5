-- One row per product: the latest version delivered.
-- dim_product reads it.
{%- set columns = [
    'sku', 'product_name', 'category', 'unit', 'list_price', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('base_crm__products'), ['sku'], columns) }}
)

select * from latest
