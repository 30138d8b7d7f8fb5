-- Every delivered product row, renamed and normalised.
with source_rows as (
    select * from {{ source('crm', 'products') }}
),

normalised as (
    select
        trim(sku) as sku,
        trim(product_name) as product_name,
        nullif(trim(category), '') as category,
        nullif(trim(unit), '') as unit,
        list_price,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
