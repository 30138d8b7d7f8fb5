-- One row per channel manager: the latest version delivered.
{%- set columns = [
    'manager_id', 'manager_name', 'region_code', 'hired_date', 'status', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('base_crm__channel_managers'), ['manager_id'], columns) }}
)

select * from latest
