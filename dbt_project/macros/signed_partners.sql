{#- "Partner signed on date D", the one definition every mart counts with: the partner's
    version valid on D (dim_partner.valid_from <= D < valid_to) is active or suspended and
    its contract was signed on or before D. A terminated partner stops counting from the
    day its termination is delivered.

    signed_partners_on(dates, date_column): one row per (date, signed partner) for every
    date of `dates` (a CTE or relation with a date column), with the partner's tier,
    parent dealer and county on that date. Callers filter on tier. -#}
{% macro signed_partners_on(dates, date_column) -%}
    select
        dates.{{ date_column }} as signed_on,
        partners.partner_id,
        partners.tier,
        partners.parent_partner_id,
        partners.region_code
    from {{ dates }} as dates
    inner join {{ ref('dim_partner') }} as partners
        on
            dates.{{ date_column }} >= partners.valid_from
            and dates.{{ date_column }} < partners.valid_to
    where
        partners.status in ('active', 'suspended')
        and partners.signed_date <= dates.{{ date_column }}
{%- endmacro %}
