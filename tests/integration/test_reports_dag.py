"""The reporting DAG: scheduled on the published-marts asset, run through Airflow on published marts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from python_calamine import CalamineWorkbook

from qudao.assets import PUBLISHED_MARTS, business_dates_of, published_extra
from qudao.config import PROJECT_ROOT

pytestmark = pytest.mark.integration

_CHILD = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.providers_configuration_loader import providers_configuration_loaded

@providers_configuration_loaded
def run():
    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    dr = bag.dags["channel_reports"].test(run_conf={"business_date": "2026-11-08"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    print("RESULT " + json.dumps({"state": str(getattr(dr.state, "value", dr.state)), "tasks": states}))

run()
"""


def test_the_event_names_the_night() -> None:
    events = [SimpleNamespace(extra=published_extra(date(2026, 11, 8))), SimpleNamespace(extra={})]
    assert business_dates_of(events) == [date(2026, 11, 8)]
    assert business_dates_of(None) == []


def test_reports_wait_for_a_published_night() -> None:
    """channel_reports is scheduled on the asset only publish_marts emits, and publish_marts runs only
    when the gate passed (all upstream succeeded): a failed gate triggers no report."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    nightly, reports = bag.dags["channel_nightly"], bag.dags["channel_reports"]
    assert list(reports.timetable.asset_condition.objects) == [PUBLISHED_MARTS]
    emitters = [t.task_id for t in nightly.tasks if PUBLISHED_MARTS in t.outlets]
    assert emitters == ["publish_marts"]
    publish = nightly.get_task("publish_marts")
    assert "check_quality" in publish.upstream_task_ids
    assert str(publish.trigger_rule) in ("all_success", "TriggerRule.ALL_SUCCESS")


def test_the_dag_renders_the_closed_week(
    published_nights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db

    reports = tmp_path / "reports"
    monkeypatch.setenv("QUDAO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", published_nights)
    monkeypatch.setenv("QUDAO_REPORTS_DIR", str(reports))
    env = airflow_env()
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    (tmp_path / "airflow").mkdir()
    ensure_airflow_db(env)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(PROJECT_ROOT / "dags" / "channel_reports.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (line,) = [x for x in child.stdout.splitlines() if x.startswith("RESULT ")] or [child.stderr[-3000:]]
    result = json.loads(line.removeprefix("RESULT "))
    assert result == {"state": "success", "tasks": {"render_reports": "success"}}
    # Sunday 11-08 closed week 2026-W45 (and no month)
    assert sorted(p.name for p in reports.iterdir()) == ["2026-W45"]
    html = (reports / "2026-W45" / "渠道周通报_2026-W45.html").read_text(encoding="utf-8")
    assert 'data-value="0.2">20.00%</td>' in html  # the call-back rate of 11-06, 1 of 5
    book = CalamineWorkbook.from_path(str(reports / "2026-W45" / "渠道周通报_2026-W45.xlsx"))
    rows = book.get_sheet_by_name("渠道经理巡检（周）").to_python()
    assert [(r[1], r[3], r[4]) for r in rows[1:]] == [("M001", 4.0, 3.0), ("M002", 1.0, 1.0)]
