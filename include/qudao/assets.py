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


def raw_asset(raw_table: str) -> Asset:
    """The raw table ``raw.<raw_table>`` as an Asset (its load task emits an event per night)."""
    return Asset(name=f"qudao_raw_{raw_table}", uri=f"qudao://warehouse/raw/{raw_table}")


def raw_assets(source: str) -> list[Asset]:
    """The raw tables a source's load task writes: one Asset per entity of its contract."""
    from qudao.contracts import entities_of

    return [raw_asset(e.raw_table) for e in entities_of(source)]


def loaded_extras(source: str, business_date: date, loaded: dict[str, int]) -> dict[Asset, dict[str, Any]]:
    """The extra of each raw-table event of a load task: the night and the rows it loaded.

    ``loaded``: rows loaded per raw table (the load task's summary); a table the night
    delivered nothing to gets ``rows_loaded`` 0.
    """
    from qudao.contracts import entities_of

    return {
        raw_asset(e.raw_table): {**published_extra(business_date), "rows_loaded": loaded.get(e.raw_table, 0)}
        for e in entities_of(source)
    }


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
