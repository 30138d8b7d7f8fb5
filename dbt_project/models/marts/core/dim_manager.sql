-- Type-2 channel-manager dimension, built like dim_partner (valid_from = business date
-- first delivered, valid_to exclusive, 9999-12-31 for the current row).
with history as (
    {{ scd2_from_intervals(
        ref('int_channel_managers__versions'), 'manager_id',
        ['manager_name', 'region_code', 'hired_date', 'status'],
        ['updated_at']
    ) }}
),

versions as (
    select
        manager_id || '@' || to_char(valid_from, 'YYYY-MM-DD') as manager_version_key,
        manager_id,
        manager_name,
        region_code,
        hired_date,
        status,
        updated_at as version_updated_at,
        valid_from,
        valid_to,
        valid_to = date '9999-12-31' as is_current
    from history
)

select
    manager_version_key,
    manager_id,
    manager_name,
    region_code,
    hired_date,
    status,
    version_updated_at,
    valid_from,
    valid_to,
    is_current
from versions
