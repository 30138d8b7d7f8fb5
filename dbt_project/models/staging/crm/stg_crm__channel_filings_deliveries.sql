{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[
        {'columns': ['filing_id']},
        {'columns': ['_load_id']},
        {'columns': ['_business_date']}
    ],
    pre_hook="{{ drop_superseded_loads('crm', 'channel_filings') }}"
) }}
-- depends_on: {{ ref('stg_ops__load_manifest') }}
-- depends_on: {{ ref('stg_ops__superseded_loads') }}
-- Every delivered channel-filing row of the current loads, normalised: raw's rows, kept in step load by
-- load (see copy_new_loads). Indexed on the key: the nightly models read every delivery of the
-- keys a night touched, and find the night's keys by _business_date. Analyzed after every
-- run, as every table a night writes (macros/statistics.sql).
{{ copy_new_loads(ref('base_crm__channel_filings'), 'crm', 'channel_filings') }}
