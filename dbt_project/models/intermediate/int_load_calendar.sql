-- One row: the first and last business dates delivered to raw (any source).
with delivered_dates as (
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('crm', 'partners') }}
    union all
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('crm', 'channel_managers') }}
    union all
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('crm', 'visits') }}
    union all
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('call_center', 'calls') }}
    union all
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('dealer_sales', 'orders') }}
    union all
    select
        min(_business_date) as first_date,
        max(_business_date) as last_date
    from {{ source('dealer_sales', 'inventory') }}
),

calendar_bounds as (
    select
        min(first_date) as first_business_date,
        max(last_date) as last_business_date
    from delivered_dates
)

select
    first_business_date,
    last_business_date
from calendar_bounds
