{#- Data tests check what a night changed, not the whole history.

    In a nightly run (var test_scope = 'night', set by qudao.transform.build when the
    warehouse already holds the models) a generic test on an incremental model reads
    only the rows of the dates being processed: the model's meta.night_column (or its
    publishing column: meta.changed_column, meta.date_column) between start_date and
    run_date. Earlier rows were tested on the nights that wrote them, and the models'
    delete+insert on their keys keeps them apart from tonight's. A first build, a
    --full-refresh and every model without such a column are tested in full.

    dbt calls get_where_subquery for the model a generic test reads; this override adds
    the night's filter to the test's own `where` config, if any. -#}

{% macro postgres__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set column = night_scope_column() -%}
    {%- if column -%}
        {%- do conditions.append(
            column ~ " between " ~ run_start_date(true) ~ " and " ~ run_end_date()
        ) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The column a night-scoped test filters the tested model on; none = test it all. -#}
{% macro night_scope_column() -%}
    {%- if not execute or var('test_scope', 'all') != 'night' or flags.FULL_REFRESH or not var('run_date', none) -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- if node is none or node.config.materialized != 'incremental' -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set meta = {} -%}
    {%- do meta.update(node.get('meta', {}) or {}) -%}
    {%- do meta.update(node.config.get('meta', {}) or {}) -%}
    {%- do return(meta.get('night_column') or meta.get('changed_column') or meta.get('date_column')) -%}
{%- endmacro %}
