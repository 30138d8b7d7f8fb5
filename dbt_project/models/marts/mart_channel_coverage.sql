{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['as_of_date'],
    on_schema_change='fail',
    meta={'date_column': 'as_of_date'}
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
    select
        evaluation_dates.eval_date,
        partners.partner_id,
        partners.region_code
    from evaluation_dates
    inner join {{ ref('dim_partner') }} as partners
        on
            evaluation_dates.eval_date >= partners.valid_from
            and evaluation_dates.eval_date < partners.valid_to
    where
        partners.status in ('active', 'suspended')
        and partners.signed_date <= evaluation_dates.eval_date
),

real_lines_in_window as (
    select
        evaluation_dates.eval_date,
        order_lines.seller_partner_id,
        order_lines.buyer_partner_id
    from evaluation_dates
    inner join {{ ref('int_order_lines__versions') }} as order_lines
        on
            evaluation_dates.eval_date >= order_lines.known_from_date
            and evaluation_dates.eval_date < order_lines.known_to_date
            and order_lines.order_date > evaluation_dates.eval_date - {{ window }}
            and evaluation_dates.eval_date >= order_lines.order_date
    where
        order_lines.is_real
        and order_lines.order_date > {{ run_start_date(is_incremental()) }} - {{ shift }} - {{ window }}
        and order_lines.order_date <= {{ run_end_date() }}
),

selling_partners as (
    select
        eval_date,
        seller_partner_id as partner_id
    from real_lines_in_window
    union
    select
        eval_date,
        buyer_partner_id
    from real_lines_in_window
    where buyer_partner_id is not null
),

county_counts as (
    select
        signed.eval_date,
        signed.region_code,
        count(distinct signed.partner_id) as partners_signed,
        count(distinct selling.partner_id) as partners_selling_90d
    from signed_partners as signed
    left join selling_partners as selling
        on signed.eval_date = selling.eval_date and signed.partner_id = selling.partner_id
    group by signed.eval_date, signed.region_code
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
