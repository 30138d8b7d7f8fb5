-- One row per call: the latest delivery (calls carry no updated_at).
-- The one place "latest" is decided; the facts read it for the keys a night touched.
{%- set columns = [
    'call_id', 'direction', 'call_type', 'partner_id', 'customer_phone_hash', 'agent_id', 'started_at',
    'ended_at', 'duration_seconds', 'outcome', 'satisfaction', '_business_date'
] %}

with latest as (
    {{ latest_version(
        ref('stg_call_center__calls_deliveries'), ['call_id'], columns, version_order='_business_date desc'
    ) }}
)

select * from latest
