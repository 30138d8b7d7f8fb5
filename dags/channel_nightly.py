"""
### channel_nightly — the channel department's nightly data run

Every night at 02:00 Asia/Shanghai this DAG processes the **previous business day**:

1. `wait_for_extracts` — a deferrable sensor waits (in the triggerer, holding no
   worker slot) until the day's required extracts of the CRM, the call center and
   the dealers' sales reporting are in the landing zone; at the deadline it fails
   naming the missing entities.
2. `load_*_extracts` — each source's files are validated against the extract
   contract and loaded into `raw` (bad rows to `ops.rejected_rows`, unreadable
   files quarantined); an asset event per raw table names the night and its rows.
3. `check_raw_quality` — the quality gate's raw stage (manifest reconciliation,
   reject share, refused files, freshness, volume): a blocking failure stops the
   night before dbt runs.
4. `build_marts` — `dbt build` builds staging, dimensions, facts and marts into
   the candidate schema `marts_candidate` and runs the dbt tests; a failing test
   is a failed check (no retry, listed in the alert), a crash is retried.
5. `check_quality` — the quality gate's candidate stage (Great Expectations suites
   and platform checks on the marts); a blocking failure stops the night here and
   nothing is published.
6. `publish_marts` — the night's candidate marts become visible in `marts` in one
   transaction (write-audit-publish).
7. `report_run` — the night's summary; the DAG's callbacks send the failure alert,
   the warnings digest or the "recovered" notice (`qudao.alerts`), and a deadline
   alert fires when the marts are not published by 07:00 Asia/Shanghai (the DAG
   `channel_publish_deadline`).

Trigger a past night with conf `{"business_date": "YYYY-MM-DD", "landing": "<url>"}`
or `qudao run --date YYYY-MM-DD`. Logic lives in `include/qudao`, not here.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from qudao.alerts import QudaoAlertNotifier
from qudao.assets import PUBLISHED_MARTS, loaded_extras, published_extra, raw_assets
from qudao.constants import BUSINESS_TZ_NAME
from qudao.orchestration.extracts import WaitForExtractsSensor
from qudao.orchestration.night import business_date_of, env_seconds, landing_of

NIGHT = "{{ qudao_business_date(dag_run.conf, logical_date) }}"


def _raw_events(context: dict, source: str, business_date: object, summary: dict) -> None:
    """Each raw table's asset event names the night and the rows it loaded."""
    for asset, extra in loaded_extras(source, business_date, summary["rows_loaded_by_table"]).items():
        context["outlet_events"][asset].extra = extra


def _night(context: dict) -> tuple:
    """(business date, landing zone, run id) of the running DAG run."""
    conf = context["dag_run"].conf
    return business_date_of(conf, context["logical_date"]), landing_of(conf), context["run_id"]


@dag(
    dag_id="channel_nightly",
    schedule=CronTriggerTimetable("0 2 * * *", timezone=BUSINESS_TZ_NAME),
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TZ_NAME),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "channel-data",
        "retries": 2,
        "retry_delay": timedelta(seconds=env_seconds("QUDAO_RETRY_DELAY_SECONDS", 300)),
        "on_failure_callback": QudaoAlertNotifier(),
    },
    on_failure_callback=QudaoAlertNotifier(),
    on_success_callback=QudaoAlertNotifier(),
    user_defined_macros={"qudao_business_date": business_date_of, "qudao_landing": landing_of},
    tags=["qudao", "channel", "nightly"],
    doc_md=__doc__,
)
def channel_nightly() -> None:
    wait_for_extracts = WaitForExtractsSensor(
        task_id="wait_for_extracts",
        landing="{{ qudao_landing(dag_run.conf) }}",
        business_date=NIGHT,
        poke_interval=env_seconds("QUDAO_EXTRACTS_POKE_SECONDS", 60),
        deadline=timedelta(seconds=env_seconds("QUDAO_EXTRACTS_DEADLINE_SECONDS", 4 * 3600)),
    )

    @task(outlets=raw_assets("crm"))
    def load_crm_extracts(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, landing, run_id = _night(context)
        summary = tasks.load_source("crm", business_date, landing, run_id)
        _raw_events(context, "crm", business_date, summary)
        return summary

    @task(outlets=raw_assets("call_center"))
    def load_call_center_extracts(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, landing, run_id = _night(context)
        summary = tasks.load_source("call_center", business_date, landing, run_id)
        _raw_events(context, "call_center", business_date, summary)
        return summary

    @task(outlets=raw_assets("dealer_sales"))
    def load_dealer_sales_extracts(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, landing, run_id = _night(context)
        summary = tasks.load_source("dealer_sales", business_date, landing, run_id)
        _raw_events(context, "dealer_sales", business_date, summary)
        return summary

    @task(retries=0)
    def check_raw_quality(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, _, run_id = _night(context)
        return tasks.check_raw_quality(business_date, run_id)

    @task
    def build_marts(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, _, run_id = _night(context)
        return tasks.build_marts(business_date, run_id)

    @task(retries=0)
    def check_quality(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, _, run_id = _night(context)
        return tasks.check_quality(business_date, run_id)

    @task(outlets=[PUBLISHED_MARTS])
    def publish_marts(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, _, run_id = _night(context)
        result = tasks.publish_marts(business_date, run_id)
        context["outlet_events"][PUBLISHED_MARTS].extra = published_extra(business_date)  # channel_reports
        return result

    @task
    def report_run(**context) -> dict:
        from qudao.orchestration import tasks

        business_date, _, run_id = _night(context)
        return tasks.report_run(business_date, run_id)

    crm = load_crm_extracts()
    calls = load_call_center_extracts()
    dealer_sales = load_dealer_sales_extracts()
    wait_for_extracts >> [crm, calls]
    crm >> dealer_sales  # order lines and stock are checked against the CRM's products
    raw_gate, build, gate = check_raw_quality(), build_marts(), check_quality()
    [calls, dealer_sales] >> raw_gate >> build >> gate >> publish_marts() >> report_run()


channel_nightly()
