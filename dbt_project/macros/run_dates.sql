{#- Which dates a date-keyed mart (re)computes.

    run_date   (var)  the business date being processed; without it the last business
                      date in raw (int_load_calendar.last_business_date).
    start_date (var)  first date to recompute in an incremental run; default run_date.

    A first build or --full-refresh computes every date from the first business date in
    raw to run_date, so it gives the same rows as nightly runs in date order. Models using
    these macros add "-- depends_on: ref('int_load_calendar')".

    Models pass is_incremental() in (run_start_date(is_incremental())): a unit test can
    only override macros the model itself calls. -#}

{% macro run_end_date() -%}
    {%- if var('run_date', none) -%}
        date '{{ var("run_date") }}'
    {%- else -%}
        (select last_business_date from {{ ref('int_load_calendar') }})
    {%- endif -%}
{%- endmacro %}

{% macro run_start_date(incremental) -%}
    {%- if incremental -%}
        {%- if var('start_date', none) -%}
            date '{{ var("start_date") }}'
        {%- else -%}
            {{ run_end_date() }}
        {%- endif -%}
    {%- else -%}
        (select first_business_date from {{ ref('int_load_calendar') }})
    {%- endif -%}
{%- endmacro %}
