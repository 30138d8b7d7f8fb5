"""``qudao status`` keeps every line within 100 characters and still tells everything it did."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.quality.results import CheckResult, GateResult, record
from qudao.status import WIDTH, status_lines

pytestmark = pytest.mark.integration

NIGHT = date(2026, 11, 14)
RUN_ID = "manual__2026-11-13T18:00:00+00:00__a-much-longer-run-id-than-airflow-makes"
STEPS = [
    ("load_crm", "success"),
    ("load_call_center", "refused_files"),
    ("load_dealer_sales", "success"),
    ("build_marts", "success"),
    ("check_quality", "passed"),
    ("publish_marts", "success"),
    ("report_run", "success"),
]


def test_status_lines_are_at_most_100_characters(db_url: str, tmp_path: Path) -> None:
    from qudao.ingest import load_date
    from qudao_demo import generate

    landing = tmp_path / "landing"
    generate(landing, NIGHT, NIGHT, scale="small", seed=5)
    report = load_date(db_url, str(landing), NIGHT)
    docs = Path(f"/home/analyst/qudao/.qudao/data_docs/nights/{NIGHT}/index.html")
    with psycopg.connect(db_url) as conn:
        for step, status in STEPS:
            conn.execute(
                "insert into ops.run_log (run_id, business_date, step, status, detail)"
                " values (%s, %s, %s, %s, '{}')",
                (RUN_ID, NIGHT, step, status),
            )
        checks = [CheckResult("raw.crm__partners", "rows", "warn", False, "0", "> 0")]
        record(conn, GateResult(RUN_ID, NIGHT, "candidate", checks, data_docs_path=docs))
        conn.execute(
            "insert into ops.publish_log (run_id, business_date, status, tables) values (%s, %s, %s, %s)",
            (RUN_ID, NIGHT, "published", json.dumps([])),
        )

    lines = status_lines(db_url)
    text = "\n".join(lines)
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert WIDTH == 100 and not too_wide, too_wide
    for step, status in STEPS:  # every step and its status is still shown
        assert f"{step}={status}" in text
    assert lines.count(f"    run_id: {RUN_ID}") == 2  # too wide for its column: under the run and the publish
    assert f"latest loaded business date, {NIGHT}" in text
    for f in report.files:  # every file of the night, with its status
        assert any(f.path.rsplit("/", 1)[-1] in line and f.status in line for line in lines), f
    assert f"    data docs: {docs}" in lines
    gate_row = next(line.split() for line in lines if " candidate " in line)
    assert gate_row[:6] == [str(NIGHT), "candidate", "passed", "0", "1", "1"], gate_row
