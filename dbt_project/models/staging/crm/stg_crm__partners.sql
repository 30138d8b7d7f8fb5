-- One row per partner: the latest version delivered.
-- The one place "latest" is decided for it (its history: int_*__versions).
{%- set columns = [
    'partner_id', 'partner_name', 'tier', 'parent_partner_id', 'region_code', 'industry', 'status',
    'signed_date', 'terminated_date', 'channel_manager_id', 'contact_phone_hash', 'updated_at',
    '_business_date'
] %}

with latest as (
    {{ latest_version(ref('stg_crm__partners_deliveries'), ['partner_id'], columns) }}
)

select * from latest
