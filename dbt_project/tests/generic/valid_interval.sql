{#- A type-2 row's validity interval is not empty, and the rows of one key neither
    overlap nor leave gaps (each valid_to is the next row's valid_from). -#}
{% test valid_interval(model, key_column, from_column='valid_from', to_column='valid_to') %}
    with ordered as (
        select
            {{ key_column }},
            {{ from_column }},
            {{ to_column }},
            lead({{ from_column }}) over (partition by {{ key_column }} order by {{ from_column }}) as next_from
        from {{ model }}
    )
    select *
    from ordered
    where {{ from_column }} >= {{ to_column }}
        or (next_from is not null and next_from <> {{ to_column }})
{% endtest %}
