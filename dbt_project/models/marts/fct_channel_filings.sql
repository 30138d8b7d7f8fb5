-- One row per channel filing, its latest version.
with filings as (
    select
        filing_id,
        partner_id,
        filing_type,
        status,
        submitted_at,
        {{ local_date('submitted_at') }} as submitted_date,
        approved_at,
        {{ local_date('approved_at') }} as approved_date,
        round(
            (extract(epoch from approved_at - submitted_at) / 3600.0)::numeric, 1
        )::numeric(10, 1) as hours_to_approve,
        approver_id,
        updated_at
    from {{ ref('stg_crm__channel_filings') }}
)

select
    filing_id,
    partner_id,
    filing_type,
    status,
    submitted_at,
    submitted_date,
    approved_at,
    approved_date,
    hours_to_approve,
    approver_id,
    updated_at
from filings
