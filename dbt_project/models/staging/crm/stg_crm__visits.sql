-- One row per visit: the latest version delivered.
{%- set columns = [
    'visit_id', 'manager_id', 'partner_id', 'visit_type', 'visited_at', 'duration_minutes',
    'issues_found', 'notes', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('base_crm__visits'), ['visit_id'], columns) }}
)

select * from latest
