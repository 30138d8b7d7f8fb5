-- Every delivered channel-manager row, renamed and normalised.
with source_rows as (
    select * from {{ source('crm', 'channel_managers') }}
),

normalised as (
    select
        trim(manager_id) as manager_id,
        trim(manager_name) as manager_name,
        trim(region_code) as region_code,
        hired_date,
        lower(trim(status)) as status,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
