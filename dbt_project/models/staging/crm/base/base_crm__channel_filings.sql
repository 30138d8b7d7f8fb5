-- Every delivered channel-filing row, renamed and normalised.
with source_rows as (
    select * from {{ source('crm', 'channel_filings') }}
),

normalised as (
    select
        trim(filing_id) as filing_id,
        trim(partner_id) as partner_id,
        lower(trim(filing_type)) as filing_type,
        lower(trim(status)) as status,
        submitted_at,
        approved_at,
        nullif(trim(approver_id), '') as approver_id,
        reason,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
