"""Which business day a nightly run processes: a rule on the business time zone.

Below every layer that needs it (orchestration, alerts), so neither imports the other for it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from qudao.constants import SHANGHAI


def business_date_of(conf: dict[str, Any] | None, logical_date: Any) -> date:
    """``conf['business_date']`` if given, else the Shanghai day before the run's logical date."""
    if conf and conf.get("business_date"):
        return date.fromisoformat(str(conf["business_date"]))
    return logical_date.astimezone(SHANGHAI).date() - timedelta(days=1)
