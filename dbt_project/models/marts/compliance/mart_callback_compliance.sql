{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['business_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['business_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per business date: partners developed that day (signed that day, or buyer or
-- seller on a real order line of that day) and how many of them got a connected
-- call-back started that day (Asia/Shanghai). A day with nobody developed is compliant.
with run_dates as (
    select date_day as business_date
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

signed_that_day as (
    select
        run_dates.business_date,
        partners.partner_id
    from run_dates
    inner join {{ ref('dim_partner') }} as partners
        on
            run_dates.business_date >= partners.valid_from
            and run_dates.business_date < partners.valid_to
            and run_dates.business_date = partners.signed_date
),

real_lines_that_day as (
    select
        order_lines.order_date as business_date,
        order_lines.seller_partner_id,
        order_lines.buyer_partner_id
    from {{ ref('int_order_lines__versions') }} as order_lines
    where
        order_lines.is_real
        and order_lines.order_date between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
        and order_lines.known_from_date <= order_lines.order_date
        and order_lines.order_date < order_lines.known_to_date
),

developed_partners as (
    select
        business_date,
        partner_id
    from signed_that_day
    union
    select
        business_date,
        seller_partner_id
    from real_lines_that_day
    union
    select
        business_date,
        buyer_partner_id
    from real_lines_that_day
    where buyer_partner_id is not null
),

connected_callbacks as (
    select distinct
        call_date as business_date,
        partner_id
    from {{ ref('fct_calls') }}
    where
        call_type = 'callback'
        and outcome = 'connected'
        and partner_id is not null
        and call_date between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

daily_counts as (
    select
        run_dates.business_date,
        count(distinct developed.partner_id) as partners_developed,
        count(distinct callbacks.partner_id) as partners_called_back
    from run_dates
    left join developed_partners as developed
        on run_dates.business_date = developed.business_date
    left join connected_callbacks as callbacks
        on developed.business_date = callbacks.business_date and developed.partner_id = callbacks.partner_id
    group by run_dates.business_date
),

rates as (
    select
        business_date,
        partners_developed::integer as partners_developed,
        partners_called_back::integer as partners_called_back,
        round(partners_called_back::numeric / nullif(partners_developed, 0), 4)::numeric(5, 4) as callback_rate,
        {{ var('callback_min_rate') }}::numeric(5, 4) as required_rate
    from daily_counts
),

-- the rule is judged on the published (four-decimal) rate, so the flag always agrees
-- with the number shown next to it; a day with nobody developed owes no call-back
compliance as (
    select
        business_date,
        partners_developed,
        partners_called_back,
        callback_rate,
        required_rate,
        coalesce(callback_rate >= required_rate, true) as is_compliant
    from rates
)

select
    business_date,
    partners_developed,
    partners_called_back,
    callback_rate,
    required_rate,
    is_compliant
from compliance
