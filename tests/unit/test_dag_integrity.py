"""Every DAG file imports cleanly, fast, with nothing heavy, and follows the house rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from qudao.config import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
HEAVY = ("great_expectations", "dbt", "pandas", "cosmos.dbt", "sqlalchemy.dialects.postgresql.psycopg")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    bag.parse_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "channel_nightly" in dagbag.dag_ids


def test_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs a doc_md"
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            if t.task_id not in (
                "check_raw_quality",
                "check_quality",
            ):  # a failed gate must not be retried into a pass
                assert t.retries >= 2, f"{dag_id}.{t.task_id} retries {t.retries}"


def test_no_cycles_and_expected_shape(dagbag):
    from airflow.utils.dag_cycle_tester import check_cycle

    dag = dagbag.dags["channel_nightly"]
    check_cycle(dag)  # raises on a cycle
    order = [t.task_id for t in dag.topological_sort()]
    assert order[0] == "wait_for_extracts"
    assert order.index("load_crm_extracts") < order.index("load_dealer_sales_extracts")
    for upstream in ("load_call_center_extracts", "load_dealer_sales_extracts"):
        assert order.index(upstream) < order.index("check_raw_quality")
    # the raw gate before dbt: a refused file or too many rejects cost no build
    assert order[-5:] == ["check_raw_quality", "build_marts", "check_quality", "publish_marts", "report_run"]


def test_parse_time_and_nothing_heavy_imported(record_property: Callable[[str, object], None]) -> None:
    """Parse dags/ in a fresh interpreter (Airflow itself already imported) and time it.

    The time is measured and recorded (``-rP`` or the JUnit report shows it), not asserted:
    timings belong in bench/, and what keeps parsing fast is asserted here, that DAG
    files import nothing heavy.
    """
    code = f"""
import json, sys, time
import airflow.sdk, pendulum
before = set(sys.modules)
t = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS)!r})
elapsed = time.perf_counter() - t
print(json.dumps({{"seconds": elapsed, "errors": list(bag.import_errors),
                  "modules": sorted(set(sys.modules) - before)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"parsing dags/ took {result['seconds']:.3f} s")
    record_property("dag_parse_seconds", round(result["seconds"], 3))
    assert result["errors"] == []
    heavy = [m for m in result["modules"] if m.startswith(HEAVY)]
    assert heavy == [], f"DAG parsing imported heavy modules: {heavy[:10]}"
