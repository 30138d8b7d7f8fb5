-- Type-2 partner dimension: one row per partner per version in which a tracked attribute
-- changed. valid_from = business date the version was first delivered; valid_to is
-- exclusive (9999-12-31 for the current row). The version valid on date D is the one
-- with valid_from <= D < valid_to.
with history as (
    {{ scd2_from_intervals(
        ref('int_partners__versions'), 'partner_id',
        ['tier', 'parent_partner_id', 'region_code', 'industry', 'status',
         'channel_manager_id', 'signed_date', 'terminated_date'],
        ['partner_name', 'contact_phone_hash', 'updated_at']
    ) }}
),

versions as (
    select
        partner_id || '@' || to_char(valid_from, 'YYYY-MM-DD') as partner_version_key,
        partner_id,
        partner_name,
        tier,
        case tier when 1 then 'dealer' when 2 then 'agent' end as partner_type,
        parent_partner_id,
        region_code,
        industry,
        status,
        signed_date,
        terminated_date,
        channel_manager_id,
        contact_phone_hash,
        updated_at as version_updated_at,
        valid_from,
        valid_to,
        valid_to = date '9999-12-31' as is_current
    from history
)

select
    partner_version_key,
    partner_id,
    partner_name,
    tier,
    partner_type,
    parent_partner_id,
    region_code,
    industry,
    status,
    signed_date,
    terminated_date,
    channel_manager_id,
    contact_phone_hash,
    version_updated_at,
    valid_from,
    valid_to,
    is_current
from versions
