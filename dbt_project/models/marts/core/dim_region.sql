-- One row per county, from the region seed (replaceable by the company's own list).
with regions as (
    select
        region_code::text as region_code,
        county_name::text as county_name,
        city_code::text as city_code,
        city_name::text as city_name,
        province_code::text as province_code,
        province_name::text as province_name,
        is_target::boolean as is_target,
        longitude::numeric(10, 6) as longitude,
        latitude::numeric(10, 6) as latitude
    from {{ ref('ref_regions') }}
)

select
    region_code,
    county_name,
    city_code,
    city_name,
    province_code,
    province_name,
    is_target,
    longitude,
    latitude
from regions
