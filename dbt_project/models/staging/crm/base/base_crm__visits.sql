-- Every delivered visit row, renamed and normalised.
with source_rows as (
    select * from {{ source('crm', 'visits') }}
),

normalised as (
    select
        trim(visit_id) as visit_id,
        trim(manager_id) as manager_id,
        trim(partner_id) as partner_id,
        lower(trim(visit_type)) as visit_type,
        visited_at,
        duration_minutes,
        issues_found,
        notes,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
