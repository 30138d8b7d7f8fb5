{#- Calendar helpers: the business day of a timestamp and the end of a business day,
    both in the business timezone (Asia/Shanghai). -#}

{% macro local_date(ts) -%}
    ({{ ts }} at time zone '{{ var("business_timezone") }}')::date
{%- endmacro %}

{% macro end_of_business_day(date_expr) -%}
    (({{ date_expr }} + 1)::timestamp at time zone '{{ var("business_timezone") }}')
{%- endmacro %}

{% macro iso_week_start(date_expr) -%}
    date_trunc('week', {{ date_expr }})::date
{%- endmacro %}
