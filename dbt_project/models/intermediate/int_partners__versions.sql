-- Every distinct partner version with the business dates during which it was the one known.
with intervals as (
    {{ version_intervals(
        ref('base_crm__partners'), ['partner_id'], ['updated_at'],
        ['partner_name', 'tier', 'parent_partner_id', 'region_code', 'industry', 'status',
         'signed_date', 'terminated_date', 'channel_manager_id', 'contact_phone_hash']
    ) }}
)

select * from intervals
