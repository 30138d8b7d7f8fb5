"""The reporting DAG's task: after a night is published, render the periods it closed."""

from __future__ import annotations

from datetime import date
from typing import Any


def render_after_publish(business_dates: list[date]) -> dict[str, Any]:
    """Render the week that closed by the latest published night (and its month on a month's
    last night) from the published marts; returns what was written, for the task's log."""
    from qudao.reports.cli import latest_published_date
    from qudao.reports.deliver import periods_closed_by, render
    from qudao.warehouse.connection import current_url

    url = current_url()
    latest = max(business_dates) if business_dates else latest_published_date(url)
    if latest is None:
        return {"reports": [], "reason": "nothing published yet"}
    lines = []
    for period in periods_closed_by(latest):
        done = render(url, period)
        lines += [done.line(), f"  Excel: {done.xlsx}"]
        print(done.line(), flush=True)
    return {"business_date": latest.isoformat(), "reports": lines}
