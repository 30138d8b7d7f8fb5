-- One row per calendar day between the calendar_start and calendar_end vars.
with days as (
    select calendar_day::date as date_day
    from generate_series(
            date '{{ var("calendar_start") }}', date '{{ var("calendar_end") }}', interval '1 day'
        ) as calendar_day
),

attributes as (
    select
        date_day,
        extract(isoyear from date_day)::integer as iso_year,
        extract(week from date_day)::integer as iso_week,
        extract(isodow from date_day)::integer as iso_day_of_week,
        date_trunc('week', date_day)::date as week_start,
        (date_trunc('week', date_day)::date + 6) as week_end,
        date_trunc('month', date_day)::date as month_start,
        extract(month from date_day)::integer as month_of_year,
        date_trunc('quarter', date_day)::date as quarter_start,
        extract(quarter from date_day)::integer as quarter_of_year,
        extract(year from date_day)::integer as calendar_year,
        extract(isodow from date_day) >= 6 as is_weekend
    from days
)

select
    date_day,
    iso_year,
    iso_week,
    iso_day_of_week,
    week_start,
    week_end,
    month_start,
    month_of_year,
    quarter_start,
    quarter_of_year,
    calendar_year,
    is_weekend
from attributes
