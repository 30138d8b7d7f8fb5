"""
### channel_reports — the weekly bulletin (周通报) and the monthly report (月报)

Scheduled on the **published-marts asset**: it runs after `channel_nightly` has
published a night (its `publish_marts` task emits the asset event, with the night's
business date in the event's extra), and only then — a night whose quality gate
failed publishes nothing and triggers nothing.

`render_reports` renders, from the published marts and through the metrics layer,
the ISO week (Monday to Sunday, Asia/Shanghai) that just closed and, on a month's
last business night (the run of the 1st at 02:00), that month: an HTML page with
ECharts charts and their tables, and an XLSX workbook with the same tables, under
`QUDAO_REPORTS_DIR` (default `.qudao/reports/<2026-W45 | 2026-11>/`). They are
e-mailed as attachments when `QUDAO_REPORT_EMAIL_TO` and `QUDAO_SMTP_HOST` are set.

Triggered by hand, conf `{"business_date": "YYYY-MM-DD"}` names the night
(default: the latest published one). A past period: `qudao report --week 2026-W45`.
Logic lives in `include/qudao/reports`, not here.
"""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from airflow.sdk import dag, task

from qudao.assets import PUBLISHED_MARTS, business_dates_of
from qudao.constants import BUSINESS_TZ_NAME


@dag(
    dag_id="channel_reports",
    schedule=[PUBLISHED_MARTS],
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TZ_NAME),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "channel-data", "retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["qudao", "channel", "reports"],
    doc_md=__doc__,
)
def channel_reports() -> None:
    @task
    def render_reports(**context) -> dict:
        from qudao.reports.nightly import render_after_publish

        events = context.get("triggering_asset_events") or {}
        dates = business_dates_of(events.get(PUBLISHED_MARTS, []) if events else [])
        conf = (context["dag_run"].conf or {}).get("business_date")
        if conf:
            dates.append(date.fromisoformat(conf))
        return render_after_publish(dates)

    render_reports()


channel_reports()
