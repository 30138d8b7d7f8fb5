{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['business_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['business_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (business_date, province, filing type): every filing submitted by the end
-- of the business date, counted by its latest state known that day; the province is the
-- one of the partner's region in the partner version valid that day ('unknown' when the
-- partner is not known yet, e.g. a `new` filing).
with run_dates as (
    select
        date_day as business_date,
        {{ end_of_business_day('date_day') }} as day_end
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

filings_known as (
    select
        run_dates.business_date,
        run_dates.day_end,
        filings.filing_id,
        filings.partner_id,
        filings.filing_type,
        filings.status,
        filings.submitted_at,
        filings.approved_at
    from run_dates
    inner join {{ ref('int_channel_filings__versions') }} as filings
        on
            run_dates.business_date >= filings.known_from_date
            and run_dates.business_date < filings.known_to_date
            and run_dates.day_end > filings.submitted_at
),

filings_placed as (
    select
        filings.business_date,
        filings.day_end,
        filings.filing_id,
        filings.filing_type,
        filings.status,
        filings.submitted_at,
        filings.approved_at,
        coalesce(regions.province_code, 'unknown') as province_code
    from filings_known as filings
    left join {{ ref('dim_partner') }} as partners
        on
            filings.partner_id = partners.partner_id
            and filings.business_date >= partners.valid_from
            and filings.business_date < partners.valid_to
    left join {{ ref('dim_region') }} as regions
        on partners.region_code = regions.region_code
),

funnel as (
    select
        business_date,
        province_code,
        filing_type,
        count(*) as filings_total,
        count(*) filter (where status = 'submitted') as submitted,
        count(*) filter (where status = 'approved') as approved,
        count(*) filter (where status = 'rejected') as rejected,
        count(*) filter (where status = 'filed') as filed,
        count(*) filter (
            where status = 'submitted' and submitted_at < day_end - interval '{{ var("pending_hours") }} hours'
        ) as pending_over_72h,
        percentile_cont(0.5) within group (
            order by extract(epoch from approved_at - submitted_at) / 3600.0
        ) filter (
            where {{ local_date('approved_at') }} = business_date
        ) as median_hours
    from filings_placed
    group by business_date, province_code, filing_type
),

final as (
    select
        business_date,
        province_code,
        filing_type,
        filings_total::integer as filings_total,
        submitted::integer as submitted,
        approved::integer as approved,
        rejected::integer as rejected,
        filed::integer as filed,
        pending_over_72h::integer as pending_over_72h,
        round(median_hours::numeric, 1)::numeric(10, 1) as median_hours_to_approve
    from funnel
)

select
    business_date,
    province_code,
    filing_type,
    filings_total,
    submitted,
    approved,
    rejected,
    filed,
    pending_over_72h,
    median_hours_to_approve
from final
