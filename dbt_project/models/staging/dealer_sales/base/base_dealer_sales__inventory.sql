-- Every delivered inventory row, renamed and normalised.
with source_rows as (
    select * from {{ source('dealer_sales', 'inventory') }}
),

normalised as (
    select
        snapshot_date,
        trim(partner_id) as partner_id,
        trim(sku) as sku,
        on_hand_qty,
        coalesce(in_transit_qty, 0) as in_transit_qty,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
