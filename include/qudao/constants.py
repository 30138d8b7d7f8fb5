"""Names every layer shares: the business time zone and the warehouse schemas.

The lowest layer: imports nothing from qudao and nothing heavy, so DAG files may
import it.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

#: the business time zone: nights, deadlines and naive timestamps are Shanghai time
BUSINESS_TZ_NAME = "Asia/Shanghai"
SHANGHAI = ZoneInfo(BUSINESS_TZ_NAME)

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"
STAGING_SCHEMA = "staging"
INTERMEDIATE_SCHEMA = "intermediate"
#: dbt builds the marts here; BI cannot see it until publishing applies it
CANDIDATE_SCHEMA = "marts_candidate"
#: what BI reads
PUBLISHED_SCHEMA = "marts"
#: every schema the platform creates, in creation order
SCHEMAS = (RAW_SCHEMA, OPS_SCHEMA, STAGING_SCHEMA, INTERMEDIATE_SCHEMA, CANDIDATE_SCHEMA, PUBLISHED_SCHEMA)
