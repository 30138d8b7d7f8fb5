-- Every distinct channel-manager version with the business dates during which it was the one known.
with intervals as (
    {{ version_intervals(
        ref('base_crm__channel_managers'), ['manager_id'], ['updated_at'],
        ['manager_name', 'region_code', 'hired_date', 'status']
    ) }}
)

select * from intervals
