{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['as_of_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['as_of_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (as_of_date, target county): signed partners (nominal coverage) and those
-- of them that sold or bought on a real order line in the trailing window (effective
-- coverage), compared with the same county coverage_change_days earlier.
{%- set window = var('coverage_window_days') %}
{%- set shift = var('coverage_change_days') %}

with run_dates as (
    select date_day as as_of_date
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

evaluation_dates as (
    select as_of_date as eval_date from run_dates
    union
    select as_of_date - {{ shift }} from run_dates
),

target_counties as (
    select
        region_code,
        city_code,
        province_code
    from {{ ref('dim_region') }}
    where is_target
),

signed_partners as (
    -- partners of either tier
    select
        signed_on as eval_date,
        partner_id,
        region_code
    from ({{ signed_partners_on('evaluation_dates', 'eval_date') }}) as signed
),

selling_flags as (
    -- A signed partner sells when a real line it sold or bought, known on the date, falls
    -- in the window: two index probes per partner and date (on (seller|buyer, order_date)),
    -- so a night costs what its partners cost, not what 90 days of order lines cost.
    select
        signed.eval_date,
        signed.partner_id,
        signed.region_code,
        (
            exists (
                select 1
                from {{ ref('int_order_lines__versions') }} as sold
                where
                    sold.seller_partner_id = signed.partner_id
                    and sold.order_date > signed.eval_date - {{ window }}
                    and sold.order_date <= signed.eval_date
                    and sold.is_real
                    and signed.eval_date >= sold.known_from_date
                    and signed.eval_date < sold.known_to_date
            )
            or exists (
                select 1
                from {{ ref('int_order_lines__versions') }} as bought
                where
                    bought.buyer_partner_id = signed.partner_id
                    and bought.order_date > signed.eval_date - {{ window }}
                    and bought.order_date <= signed.eval_date
                    and bought.is_real
                    and signed.eval_date >= bought.known_from_date
                    and signed.eval_date < bought.known_to_date
            )
        ) as is_selling
    from signed_partners as signed
),

county_counts as (
    select
        eval_date,
        region_code,
        count(distinct partner_id) as partners_signed,
        count(distinct partner_id) filter (where is_selling) as partners_selling_90d
    from selling_flags
    group by eval_date, region_code
),

county_days as (
    select
        run_dates.as_of_date,
        counties.region_code,
        counties.city_code,
        counties.province_code,
        coalesce(now_.partners_signed, 0)::integer as partners_signed,
        coalesce(now_.partners_selling_90d, 0)::integer as partners_selling_90d,
        coalesce(now_.partners_signed, 0) > 0 as is_covered_nominal,
        coalesce(now_.partners_selling_90d, 0) > 0 as is_covered_effective,
        coalesce(before_.partners_selling_90d, 0) > 0 as was_covered_effective
    from run_dates
    cross join target_counties as counties
    left join county_counts as now_
        on run_dates.as_of_date = now_.eval_date and counties.region_code = now_.region_code
    left join county_counts as before_
        on before_.eval_date = run_dates.as_of_date - {{ shift }} and counties.region_code = before_.region_code
),

coverage as (
    select
        as_of_date,
        region_code,
        city_code,
        province_code,
        partners_signed,
        partners_selling_90d,
        is_covered_nominal,
        is_covered_effective,
        was_covered_effective as was_covered_effective_30d_ago,
        case
            when is_covered_effective and not was_covered_effective then 'gained'
            when was_covered_effective and not is_covered_effective then 'lost'
            else 'unchanged'
        end as coverage_change
    from county_days
)

select
    as_of_date,
    region_code,
    city_code,
    province_code,
    partners_signed,
    partners_selling_90d,
    is_covered_nominal,
    is_covered_effective,
    was_covered_effective_30d_ago,
    coverage_change
from coverage
