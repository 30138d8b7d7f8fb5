{#- Staging's copy of raw, one entity at a time: every delivered row of the current loads.

    raw.<entity> holds the rows of the current loads and nothing else: a corrected file of a
    date deletes its predecessor's rows and marks that load superseded in ops.load_manifest
    (qudao.ingest.loader). So a copy kept in step load by load - copy the rows of current
    loads not copied yet, drop the rows of loads since superseded - holds exactly the rows a
    full copy would, whatever the order in which dates were loaded or rebuilt, and a night
    reads from raw only the rows of its new loads (through raw's BRIN on _load_id).

    copy_new_loads is the model's select; drop_superseded_loads its pre-hook. The model
    adds "-- depends_on:" lines for stg_ops__load_manifest and stg_ops__superseded_loads
    (the refs sit inside is_incremental(), which dbt does not see when it parses). -#}

{% macro copy_new_loads(base_relation, source_name, entity) -%}
    {%- if is_incremental() %}
    with new_loads as (
        -- the entity's current loads whose rows are not in the copy yet
        select loads.load_id
        from {{ ref('stg_ops__load_manifest') }} as loads
        where
            loads.source = '{{ source_name }}'
            and loads.entity = '{{ entity }}'
            and not exists (
                select 1
                from {{ this }} as copied
                where copied._load_id = loads.load_id
            )
    )

    select *
    from {{ base_relation }}
    where
        -- the range lets raw's BRIN on _load_id skip every block outside the new loads
        -- (BRIN cannot use the "= any" list alone); the list keeps only the new loads' rows
        _load_id between (select min(load_id) from new_loads) and (select max(load_id) from new_loads)
        and _load_id = any(array(select load_id from new_loads))
    {%- else %}
    select *
    from {{ base_relation }}
    {%- endif %}
{%- endmacro %}

{% macro drop_superseded_loads(source_name, entity) -%}
    {%- if is_incremental() -%}
        -- "= any(array(...))": one lookup per superseded load in the copy's index on _load_id,
        -- not a hash join over the whole copy
        delete from {{ this }}
        where _load_id = any(array(
            select superseded.load_id
            from {{ ref('stg_ops__superseded_loads') }} as superseded
            where superseded.source = '{{ source_name }}' and superseded.entity = '{{ entity }}'
        ))
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
