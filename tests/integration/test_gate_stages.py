"""Each kind of fault fails its own stage of the night (issue 11): the raw gate before dbt,
a failing dbt test as a failed check (no retry, listed with its count), the marts gate after.

Real PostgreSQL, real dbt, the task functions the nightly DAG calls; the hand-made
night 1 of ``test_marts_numbers``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from test_marts_numbers import D1, _deliver

from qudao.alerts.compose import Event, failure_kind
from qudao.orchestration import tasks
from qudao.publish import PublishRefused

pytestmark = pytest.mark.integration

SOURCES = ("crm", "call_center", "dealer_sales")
#: a singular dbt test the data breaks: three rows of a mart "violate" it
PLANTED = "select as_of_date from {{ ref('mart_channel_coverage_province') }} limit 3\n"


@pytest.fixture
def night(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Night 1 delivered into a landing zone; the tasks reach ``db_url`` (a fresh database)."""
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)
    monkeypatch.setenv("QUDAO_HOME", str(tmp_path / "home"))
    landing = tmp_path / "landing"
    _deliver(landing, D1)
    return {"url": db_url, "landing": landing, "tmp": tmp_path}


def _stages(url: str, run_id: str) -> list[tuple[str, bool]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "select stage, passed from ops.gate_runs where run_id = %s order by finished_at", (run_id,)
        ).fetchall()


def _load(night: dict, run_id: str) -> None:
    for source in SOURCES:
        tasks.load_source(source, D1, str(night["landing"]), run_id)


def _night_with_planted(
    night: dict, monkeypatch: pytest.MonkeyPatch, run_id: str, files: dict[str, str]
) -> None:
    """A copy of the dbt project with ``files`` (paths in it) added; night 1 loaded and raw-gated."""
    project = night["tmp"] / "dbt_project"
    shutil.copytree(
        Path(__file__).parents[2] / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("QUDAO_DBT_PROJECT_DIR", str(project))
    _load(night, run_id)
    tasks.check_raw_quality(D1, run_id)


def _failed_checks(night: dict, run_id: str, failed: tasks.GateFailed) -> list[tuple[str, str]]:
    """``build_marts`` failed as a check, not a crash; the night's failed dbt checks (name, observed)."""
    assert str(failed).endswith("nothing was published")
    # an AirflowFailException: the task is not retried; the alert calls it a failed check
    assert isinstance(failed, tasks.AirflowFailException)
    event = Event("task_failure", "channel_nightly", run_id, task_id="build_marts", outcome=failed.outcome)
    assert failure_kind(event) == "quality_gate"
    with psycopg.connect(night["url"]) as c:
        return c.execute(
            "select check_name, observed from ops.quality_results where run_id = %s and suite = 'dbt'"
            " and not passed",
            (run_id,),
        ).fetchall()


def test_a_failing_dbt_test_is_a_failed_check_not_a_crash(night, monkeypatch):
    run_id = "night-planted"
    _night_with_planted(night, monkeypatch, run_id, {"tests/assert_planted_fault.sql": PLANTED})

    with pytest.raises(tasks.GateFailed) as failed:
        tasks.build_marts(D1, run_id)

    message = str(failed.value)
    assert "dbt :: assert_planted_fault" in message and "3 rows break it" in message, message
    assert _failed_checks(night, run_id, failed.value) == [("assert_planted_fault", "3 rows break it")]
    with psycopg.connect(night["url"]) as c:
        passing = c.execute(
            "select count(*) from ops.quality_results where run_id = %s and suite = 'dbt' and passed",
            (run_id,),
        ).fetchone()[0]
    assert passing > 50  # every other test of the build is recorded beside it
    assert _stages(night["url"], run_id) == [("raw", True), ("dbt", False)]
    with pytest.raises(PublishRefused, match="quality gate failed"):
        tasks.publish_marts(D1, run_id)
    with psycopg.connect(night["url"]) as c:
        assert c.execute("select count(*) from ops.publish_log where status = 'published'").fetchone() == (0,)


#: a model whose grain PostgreSQL enforces (its contract's primary key) and its SQL breaks
PLANTED_GRAIN_SQL = "select 1 as planted_id union all select 1 as planted_id\n"
PLANTED_GRAIN_YML = """version: 2
models:
  - name: planted_grain
    config: {materialized: table, contract: {enforced: true}}
    constraints:
      - {type: primary_key, columns: [planted_id]}
    columns:
      - {name: planted_id, data_type: integer}
"""


def test_rows_an_enforced_constraint_refuses_are_a_failed_check_not_a_crash(night, monkeypatch):
    """With every public model's grain an enforced primary key, a duplicate reaches PostgreSQL
    before any uniqueness test: that refusal is the data breaking a rule, like a failing test."""
    run_id = "night-planted-grain"
    planted = {
        "models/intermediate/planted_grain.sql": PLANTED_GRAIN_SQL,
        "models/intermediate/planted_grain.yml": PLANTED_GRAIN_YML,
    }
    _night_with_planted(night, monkeypatch, run_id, planted)

    with pytest.raises(tasks.GateFailed) as failed:
        tasks.build_marts(D1, run_id)

    message = str(failed.value)
    assert "dbt :: planted_grain: constraints" in message, message
    assert "duplicate key value violates unique constraint" in message, message
    rows = _failed_checks(night, run_id, failed.value)
    assert [name for name, _ in rows] == ["planted_grain: constraints"]
    assert "(planted_id)=(1) already exists" in rows[0][1], rows
    assert _stages(night["url"], run_id) == [("raw", True), ("dbt", False)]


def test_a_refused_file_stops_the_night_before_dbt_runs(night):
    orders = night["landing"] / "dealer_sales" / D1.isoformat() / "orders.csv"
    orders.write_bytes(b"\xff\xfe not an orders file")
    run_id = "night-refused"
    _load(night, run_id)

    with pytest.raises(tasks.GateFailed) as failed:
        tasks.check_raw_quality(D1, run_id)

    assert "no_refused_files" in str(failed.value)
    assert _stages(night["url"], run_id) == [("raw", False)]
    with psycopg.connect(night["url"]) as c:  # dbt never ran: nothing was built
        assert c.execute("select to_regclass('marts_candidate.mart_channel_coverage')").fetchone() == (None,)
