-- One row per (snapshot_date, partner, sku): the latest delivery (no updated_at).
{%- set columns = [
    'snapshot_date', 'partner_id', 'sku', 'on_hand_qty', 'in_transit_qty', '_business_date'
] %}

with latest as (
    {{ latest_version(
        ref('base_dealer_sales__inventory'), ['snapshot_date', 'partner_id', 'sku'], columns,
        version_order='_business_date desc'
    ) }}
)

select * from latest
