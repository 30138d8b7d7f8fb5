{#- Which dates a date-keyed mart (re)computes, and which rows a night's tests read.

    run_date   the business date being processed; without it the last business date
               in raw (int_load_calendar.last_business_date).
    start_date first date to recompute in an incremental run; default run_date.
    night_from first date whose rows the night-scoped tests read (see get_where_subquery).

    Each is the var of that name when one is given (`dbt build --vars`), else the
    environment variable QUDAO_DBT_<NAME> that qudao.transform.build sets for its build. The
    environment is read only while executing: dbt does not see it when parsing, so a new
    night's dates do not make dbt re-parse the project (new --vars would).

    A first build or --full-refresh computes every date from the first business date in
    raw to run_date, so it gives the same rows as nightly runs in date order. Models using
    these macros add "-- depends_on: ref('int_load_calendar')".

    Models pass is_incremental() in (run_start_date(is_incremental())): a unit test can
    only override macros the model itself calls. -#}

{% macro night_date(name) -%}
    {%- if var(name, none) -%}
        {{ var(name) }}
    {%- elif execute -%}
        {{ env_var('QUDAO_DBT_' ~ (name | upper), '') }}
    {%- endif -%}
{%- endmacro %}

{% macro run_end_date() -%}
    {%- set run_date = night_date('run_date') -%}
    {%- if run_date -%}
        date '{{ run_date }}'
    {%- else -%}
        (select last_business_date from {{ ref('int_load_calendar') }})
    {%- endif -%}
{%- endmacro %}

{% macro run_start_date(incremental) -%}
    {%- set start_date = night_date('start_date') if incremental else '' -%}
    {%- if not incremental -%}
        (select first_business_date from {{ ref('int_load_calendar') }})
    {%- elif start_date -%}
        date '{{ start_date }}'
    {%- else -%}
        {{ run_end_date() }}
    {%- endif -%}
{%- endmacro %}

{#- Night-scoped tests (dbt_project.yml): a test whose `where` config is
    "night_rows: <column>" reads the rows with <column> between night_from and run_date
    when night_from is set, and every row otherwise. dbt renders `where` when it parses
    the yml, so the dates are put in here, when the test is compiled. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') or '' -%}
    {%- if where.startswith('night_rows:') -%}
        {%- set night_from = night_date('night_from') -%}
        {%- set where = (where[11:] | trim) ~ " between date '" ~ night_from ~ "' and date '" ~ night_date('run_date') ~ "'" if night_from else '' -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
