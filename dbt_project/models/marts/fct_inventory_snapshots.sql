-- One row per (snapshot_date, partner_id, sku): stock at the end of that day, latest delivery.
with snapshots as (
    select
        snapshot_date,
        partner_id,
        sku,
        on_hand_qty,
        in_transit_qty
    from {{ ref('stg_dealer_sales__inventory') }}
)

select
    snapshot_date,
    partner_id,
    sku,
    on_hand_qty,
    in_transit_qty
from snapshots
