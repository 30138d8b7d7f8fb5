-- One row per visit: the latest version delivered.
-- The one place "latest" is decided; the facts read it for the keys a night touched.
{%- set columns = [
    'visit_id', 'manager_id', 'partner_id', 'visit_type', 'visited_at', 'duration_minutes',
    'issues_found', 'notes', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('stg_crm__visits_deliveries'), ['visit_id'], columns) }}
)

select * from latest
