-- One row per filing: the latest version delivered.
{%- set columns = [
    'filing_id', 'partner_id', 'filing_type', 'status', 'submitted_at', 'approved_at', 'approver_id',
    'reason', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('base_crm__channel_filings'), ['filing_id'], columns) }}
)

select * from latest
