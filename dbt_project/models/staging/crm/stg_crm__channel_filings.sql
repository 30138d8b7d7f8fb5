-- One row per filing: the latest version delivered.
-- The one place "latest" is decided; the facts read it for the keys a night touched.
{%- set columns = [
    'filing_id', 'partner_id', 'filing_type', 'status', 'submitted_at', 'approved_at', 'approver_id',
    'reason', 'updated_at', '_business_date'
] %}

with latest as (
    {{ latest_version(ref('stg_crm__channel_filings_deliveries'), ['filing_id'], columns) }}
)

select * from latest
