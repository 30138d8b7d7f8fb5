"""The Airflow Assets qudao's DAGs share: what the nightly run produces, what reporting waits for.

Import-light (only ``airflow.sdk``'s Asset), so DAG files may import it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.sdk import Asset

#: the published marts (schema ``marts``): ``channel_nightly.publish_marts`` emits an event
#: each time a night passed its gate and was published; ``channel_reports`` runs on it
PUBLISHED_MARTS = Asset(name="qudao_published_marts", uri="qudao://warehouse/marts")

#: the key of the event's extra that names the night's business date (YYYY-MM-DD)
BUSINESS_DATE = "business_date"


def published_extra(business_date: date) -> dict[str, str]:
    """The extra of a published-marts event."""
    return {BUSINESS_DATE: business_date.isoformat()}


def business_dates_of(events: Any) -> list[date]:
    """Business dates named by published-marts events (their extra), oldest first."""
    out = set()
    for event in events or ():
        value = (getattr(event, "extra", None) or {}).get(BUSINESS_DATE)
        if value:
            out.add(date.fromisoformat(str(value)))
    return sorted(out)
