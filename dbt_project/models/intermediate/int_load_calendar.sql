-- One row: the first and last business dates delivered to raw (any source).
-- Read from the current loads (one row per file), not from raw (every row ever delivered):
-- the dates of the current loads that put rows into raw are exactly raw's dates.
with current_loads as (
    select business_date
    from {{ ref('stg_ops__load_manifest') }}
    where
        (source, entity) in (
            ('crm', 'partners'),
            ('crm', 'channel_managers'),
            ('crm', 'visits'),
            ('call_center', 'calls'),
            ('dealer_sales', 'orders'),
            ('dealer_sales', 'inventory')
        )
),

calendar_bounds as (
    select
        min(business_date) as first_business_date,
        max(business_date) as last_business_date
    from current_loads
)

select
    first_business_date,
    last_business_date
from calendar_bounds
