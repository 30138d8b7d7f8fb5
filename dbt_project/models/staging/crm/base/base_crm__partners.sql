-- Every delivered partner row, renamed and normalised; the phone only as a keyed hash.
with source_rows as (
    select * from {{ source('crm', 'partners') }}
),

normalised as (
    select
        trim(partner_id) as partner_id,
        trim(partner_name) as partner_name,
        tier,
        nullif(trim(parent_partner_id), '') as parent_partner_id,
        trim(region_code) as region_code,
        nullif(trim(industry), '') as industry,
        lower(trim(status)) as status,
        signed_date,
        terminated_date,
        nullif(trim(channel_manager_id), '') as channel_manager_id,
        {{ hash_pii(normalize_phone_e164('contact_phone')) }} as contact_phone_hash,
        updated_at,
        _business_date,
        _load_id,
        _line_number
    from source_rows
)

select * from normalised
