{#- Post-hook of every model: fresh planner statistics for every table a night wrote, before
    anything reads it. Tables rebuilt whole (dimensions, int_load_calendar) have none of their
    own; an incremental table has them, but not for the rows the night just added: a
    date-keyed table's statistics hold its few dates as most-common values, so PostgreSQL
    estimates one row for the new date and plans the next query on it (a later model, the
    quality gate) as a loop per row. A large night's gate spent over half an hour in one
    such loop before autovacuum's analyze came, and a medium night's version model took
    190 s on staging's just-created deliveries tables. ANALYZE reads a fixed sample (a fraction of
    a second per table); views have no statistics. -#}
{% macro analyze_rebuilt_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
