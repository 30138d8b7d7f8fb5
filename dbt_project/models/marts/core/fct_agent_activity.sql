{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['as_of_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['as_of_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (as_of_date, agent): every second-tier agent signed on as_of_date (version
-- valid that day, status active or suspended, signed on or before it) and its buying.
-- Order lines count as known on as_of_date (the version delivered by then).
{%- set window = var('active_window_days') %}
{%- set shift = var('activity_change_days') %}

with run_dates as (
    select date_day as as_of_date
    from {{ ref('dim_date') }}
    where date_day between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

signed_partners as (
    {{ signed_partners_on('run_dates', 'as_of_date') }}
),

signed_agents as (
    select
        signed_on as as_of_date,
        partner_id as agent_id,
        parent_partner_id as dealer_id,
        region_code
    from signed_partners
    where tier = 2
),

agent_activity as (
    -- one pass over the signed agents with index lookups on (buyer_partner_id, order_date):
    -- a night reads its agents' latest and recent lines, not every line they ever bought
    select
        agents.as_of_date,
        agents.agent_id,
        agents.dealer_id,
        agents.region_code,
        latest.last_order_date,
        recent.order_lines_30d::integer as order_lines_30d,
        recent.revenue_30d::numeric(14, 2) as revenue_30d,
        recent.order_lines_30d > 0 as is_active,
        exists(
            select 1
            from {{ ref('int_order_lines__versions') }} as order_lines
            where
                order_lines.buyer_partner_id = agents.agent_id
                and order_lines.is_real
                and order_lines.order_date > agents.as_of_date - {{ shift }} - {{ window }}
                and order_lines.order_date <= agents.as_of_date - {{ shift }}
                and order_lines.known_from_date <= agents.as_of_date - {{ shift }}
                and order_lines.known_to_date > agents.as_of_date - {{ shift }}
        ) as was_active_30d_ago,
        latest.last_order_date is not null as has_ever_ordered
    from signed_agents as agents
    cross join
        lateral (
            select max(order_lines.order_date) as last_order_date
            from {{ ref('int_order_lines__versions') }} as order_lines
            where
                order_lines.buyer_partner_id = agents.agent_id
                and order_lines.is_real
                and order_lines.order_date <= agents.as_of_date
                and order_lines.known_from_date <= agents.as_of_date
                and order_lines.known_to_date > agents.as_of_date
        ) as latest
    cross join lateral (
        select
            count(order_lines.order_id) as order_lines_30d,
            coalesce(sum(order_lines.line_amount), 0) as revenue_30d
        from {{ ref('int_order_lines__versions') }} as order_lines
        where
            order_lines.buyer_partner_id = agents.agent_id
            and order_lines.is_real
            and order_lines.order_date > agents.as_of_date - {{ window }}
            and order_lines.order_date <= agents.as_of_date
            and order_lines.known_from_date <= agents.as_of_date
            and order_lines.known_to_date > agents.as_of_date
    ) as recent
)

select
    as_of_date,
    agent_id,
    dealer_id,
    region_code,
    last_order_date,
    order_lines_30d,
    revenue_30d,
    is_active,
    was_active_30d_ago,
    has_ever_ordered
from agent_activity
