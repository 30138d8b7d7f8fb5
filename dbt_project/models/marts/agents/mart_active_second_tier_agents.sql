{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['as_of_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['as_of_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (as_of_date, first-tier dealer): its signed second-tier agents and how many
-- of them really buy. Dealers: signed first-tier partners (version valid that day) and
-- any dealer named as parent by a signed agent.
with run_dates as (
    select date_day as as_of_date
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

signed_partners as (
    {{ signed_partners_on('run_dates', 'as_of_date') }}
),

signed_dealers as (
    select
        signed_on as as_of_date,
        partner_id as dealer_id
    from signed_partners
    where tier = 1
),

agent_counts as (
    select
        as_of_date,
        dealer_id,
        count(*) as agents_signed,
        count(*) filter (where is_active) as agents_active,
        count(*) filter (where is_active and not was_active_30d_ago) as agents_newly_active,
        count(*) filter (where was_active_30d_ago and not is_active) as agents_lapsed,
        count(*) filter (where not has_ever_ordered) as agents_never_ordered
    from {{ ref('fct_agent_activity') }}
    where
        as_of_date between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
        and dealer_id is not null
    group by as_of_date, dealer_id
),

dealer_days as (
    select
        coalesce(dealers.as_of_date, counts.as_of_date) as as_of_date,
        coalesce(dealers.dealer_id, counts.dealer_id) as dealer_id,
        coalesce(counts.agents_signed, 0)::integer as agents_signed,
        coalesce(counts.agents_active, 0)::integer as agents_active,
        round(counts.agents_active::numeric / nullif(counts.agents_signed, 0), 4)::numeric(5, 4) as active_rate,
        coalesce(counts.agents_newly_active, 0)::integer as agents_newly_active,
        coalesce(counts.agents_lapsed, 0)::integer as agents_lapsed,
        coalesce(counts.agents_never_ordered, 0)::integer as agents_never_ordered
    from signed_dealers as dealers
    full outer join agent_counts as counts
        on dealers.as_of_date = counts.as_of_date and dealers.dealer_id = counts.dealer_id
)

select
    as_of_date,
    dealer_id,
    agents_signed,
    agents_active,
    active_rate,
    agents_newly_active,
    agents_lapsed,
    agents_never_ordered
from dealer_days
