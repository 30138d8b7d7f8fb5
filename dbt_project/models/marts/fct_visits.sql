-- One row per visit, its latest version; dated in Asia/Shanghai.
with visits as (
    select
        visit_id,
        manager_id,
        partner_id,
        visit_type,
        visit_type = 'inspection' as is_inspection,
        visited_at,
        {{ local_date('visited_at') }} as visit_date,
        {{ iso_week_start(local_date('visited_at')) }} as week_start,
        duration_minutes,
        issues_found,
        updated_at
    from {{ ref('stg_crm__visits') }}
)

select
    visit_id,
    manager_id,
    partner_id,
    visit_type,
    is_inspection,
    visited_at,
    visit_date,
    week_start,
    duration_minutes,
    issues_found,
    updated_at
from visits
