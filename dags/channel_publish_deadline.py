"""
### channel_publish_deadline — were last night's marts published by 07:00?

At 07:00 Asia/Shanghai this DAG checks that the previous business day's marts
were published. If not, its task fails with the typed outcome "marts not published
by the deadline", and the task's failure callback sends the alert like every other
failure (`qudao.alerts`, the same channels), so the miss is visible in the UI as well.

Airflow 3 deadline alerts would express the same rule on `channel_nightly`
itself, but `dag.test()` (which `qudao run` uses) crashes on DAGs that carry one
in Airflow 3.3, so the rule is its own small DAG. Trigger a past date with conf
`{"business_date": "YYYY-MM-DD"}`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from qudao.alerts import QudaoAlertNotifier
from qudao.constants import BUSINESS_TZ_NAME
from qudao.orchestration.night import business_date_of


@dag(
    dag_id="channel_publish_deadline",
    schedule=CronTriggerTimetable("0 7 * * *", timezone=BUSINESS_TZ_NAME),
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TZ_NAME),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "channel-data", "retries": 2, "on_failure_callback": QudaoAlertNotifier()},
    tags=["qudao", "channel", "alerts"],
    doc_md=__doc__,
)
def channel_publish_deadline() -> None:
    @task
    def check_marts_published(**context) -> dict:
        from qudao.orchestration import tasks

        business_date = business_date_of(context["dag_run"].conf, context["logical_date"])
        return tasks.check_published_by_deadline(business_date, context["logical_date"], context["run_id"])

    check_marts_published()


channel_publish_deadline()
