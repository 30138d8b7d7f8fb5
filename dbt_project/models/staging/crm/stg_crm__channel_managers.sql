-- One row per channel manager: the latest version delivered.
-- The one place "latest" is decided for it (its history: int_*__versions).
{%- set columns = [
    'manager_id', 'manager_name', 'region_code', 'hired_date', 'status', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('stg_crm__channel_managers_deliveries'), ['manager_id'], columns) }}
)

select * from latest
