{#- A real order line is placed or shipped: cancelled and returned lines count nowhere,
    not even as "ever ordered" (docs/marts.md, rule 2). The version models and the
    fact carry the flag as is_real; the marts read the flag, never the statuses. -#}
{% macro is_real_order_line(status_column) -%}
    {{ status_column }} in ('placed', 'shipped')
{%- endmacro %}
