{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['as_of_date'],
    on_schema_change='fail',
    indexes=[{'columns': ['as_of_date']}]
) }}
-- depends_on: {{ ref('int_load_calendar') }}
-- One row per (as_of_date, province): roll-up of mart_channel_coverage.
with county_coverage as (
    select
        as_of_date,
        province_code,
        is_covered_nominal,
        is_covered_effective
    from {{ ref('mart_channel_coverage') }}
    where as_of_date between {{ run_start_date(is_incremental()) }} and {{ run_end_date() }}
),

provinces as (
    select distinct
        province_code,
        province_name
    from {{ ref('dim_region') }}
),

province_counts as (
    select
        as_of_date,
        province_code,
        count(*) as target_counties,
        count(*) filter (where is_covered_nominal) as covered_nominal,
        count(*) filter (where is_covered_effective) as covered_effective
    from county_coverage
    group by as_of_date, province_code
),

province_coverage as (
    select
        counts.as_of_date,
        counts.province_code,
        provinces.province_name,
        counts.target_counties::integer as target_counties,
        counts.covered_nominal::integer as covered_nominal,
        counts.covered_effective::integer as covered_effective,
        round(counts.covered_nominal::numeric / counts.target_counties, 4)::numeric(5, 4) as nominal_rate,
        round(counts.covered_effective::numeric / counts.target_counties, 4)::numeric(5, 4) as effective_rate
    from province_counts as counts
    left join provinces
        on counts.province_code = provinces.province_code
)

select
    as_of_date,
    province_code,
    province_name,
    target_counties,
    covered_nominal,
    covered_effective,
    nominal_rate,
    effective_rate
from province_coverage
