-- One row per (snapshot_date, partner, sku): the latest delivery (no updated_at).
-- The one place "latest" is decided; the facts read it for the keys a night touched.
{%- set columns = [
    'snapshot_date', 'partner_id', 'sku', 'on_hand_qty', 'in_transit_qty', '_business_date'
] %}

with latest as (
    {{ latest_version(
        ref('stg_dealer_sales__inventory_deliveries'), ['snapshot_date', 'partner_id', 'sku'], columns,
        version_order='_business_date desc'
    ) }}
)

select * from latest
