{#- Use a model's custom schema name as is (staging, intermediate, marts_candidate),
    not dbt's default "<target schema>_<custom schema>". With the var published_docs
    (qudao docs), the marts are described where analysts read them: marts, not the
    candidate schema dbt builds them into. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif var('published_docs', false) and (custom_schema_name | trim) == 'marts_candidate' -%}
        marts
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
