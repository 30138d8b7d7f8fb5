{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['week_start'],
    on_schema_change='fail',
    indexes=[{'columns': ['week_start']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (ISO week, active channel manager): inspections against the three-a-week
-- rule and the share of the manager's active partners inspected in the 30 days ending at
-- week end. A run for dates [start_date, run_date] recomputes every ISO week containing
-- one of them, counting what is known up to the earlier of week end and run_date (so the
-- current week fills up night after night and is final after its Sunday).
{%- set window = var('portfolio_window_days') %}

with run_weeks as (
    select distinct week_start
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

weeks as (
    select
        week_start,
        week_start + 6 as week_end,
        least(week_start + 6, {{ run_end_date() }}) as knowledge_date
    from run_weeks
),

active_managers as (
    select
        weeks.week_start,
        managers.manager_id
    from weeks
    inner join {{ ref('dim_manager') }} as managers
        on
            weeks.knowledge_date >= managers.valid_from
            and weeks.knowledge_date < managers.valid_to
    where managers.status = 'active'
),

inspections as (
    select
        weeks.week_start,
        visits.visit_id,
        visits.manager_id,
        visits.partner_id,
        visits.visit_date
    from weeks
    inner join {{ ref('int_visits__versions') }} as visits
        on
            weeks.knowledge_date >= visits.known_from_date
            and weeks.knowledge_date < visits.known_to_date
            and visits.visit_date > weeks.week_end - {{ window }}
            and weeks.week_end >= visits.visit_date
    where
        visits.visit_type = 'inspection'
        and visits.visit_date > {{ iso_week_start(run_start_date(is_incremental())) }} + 6 - {{ window }}
),

week_inspections as (
    select
        week_start,
        manager_id,
        count(distinct visit_id) as inspections,
        count(distinct partner_id) as partners_inspected
    from inspections
    where visit_date >= week_start
    group by week_start, manager_id
),

inspected_partners as (
    select distinct
        week_start,
        partner_id
    from inspections
),

portfolio as (
    select
        weeks.week_start,
        partners.channel_manager_id as manager_id,
        partners.partner_id
    from weeks
    inner join {{ ref('dim_partner') }} as partners
        on
            weeks.knowledge_date >= partners.valid_from
            and weeks.knowledge_date < partners.valid_to
    where
        partners.status = 'active'
        and partners.channel_manager_id is not null
),

portfolio_counts as (
    select
        portfolio.week_start,
        portfolio.manager_id,
        count(*) as portfolio_partners,
        count(inspected.partner_id) as portfolio_inspected_30d
    from portfolio
    left join inspected_partners as inspected
        on portfolio.week_start = inspected.week_start and portfolio.partner_id = inspected.partner_id
    group by portfolio.week_start, portfolio.manager_id
),

compliance as (
    select
        managers.week_start,
        managers.week_start + 6 as week_end,
        managers.manager_id,
        coalesce(week_inspections.inspections, 0)::integer as inspections,
        coalesce(week_inspections.partners_inspected, 0)::integer as partners_inspected,
        {{ var('required_inspections') }}::integer as required_inspections,
        coalesce(week_inspections.partners_inspected, 0) >= {{ var('required_inspections') }} as is_compliant,
        coalesce(portfolio_counts.portfolio_partners, 0)::integer as portfolio_partners,
        coalesce(portfolio_counts.portfolio_inspected_30d, 0)::integer as portfolio_inspected_30d,
        round(
            portfolio_counts.portfolio_inspected_30d::numeric / nullif(portfolio_counts.portfolio_partners, 0), 4
        )::numeric(5, 4) as portfolio_inspected_rate
    from active_managers as managers
    left join week_inspections
        on managers.week_start = week_inspections.week_start and managers.manager_id = week_inspections.manager_id
    left join portfolio_counts
        on managers.week_start = portfolio_counts.week_start and managers.manager_id = portfolio_counts.manager_id
)

select
    week_start,
    week_end,
    manager_id,
    inspections,
    partners_inspected,
    required_inspections,
    is_compliant,
    portfolio_partners,
    portfolio_inspected_30d,
    portfolio_inspected_rate
from compliance
