{#- Post-hook of every model: fresh planner statistics for the tables rebuilt whole each
    night (dimensions, int_load_calendar). Without them PostgreSQL guesses a handful of
    rows and plans a nightly query as one loop per partner. Incremental models keep
    their statistics; views have none. -#}
{% macro analyze_rebuilt_table() -%}
    {%- if config.get('materialized') == 'table' -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
