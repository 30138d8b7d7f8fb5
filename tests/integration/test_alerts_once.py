"""One failed run sends one alert: with the warehouse's ledger, and with the local one when it is down.

Before, a night whose warehouse was unreachable sent three alerts: one per failed
loader (both failed on the same server) plus the DAG's run-failure alert, because
without ``ops.alert_log`` nothing was deduplicated.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pendulum
import psycopg
import pytest
from airflow.sdk import DAG
from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
from airflow.sdk.bases.operator import BaseOperator
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from qudao.alerts import QudaoAlertNotifier
from qudao.ledger.outcomes import StepOutcome
from qudao.orchestration.failures import with_outcome

DAG_ID = "channel_nightly"
NIGHT = date(2026, 11, 15)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _context(task_id: str, run_id: str, exc: BaseException | None, clear_number: int = 0) -> dict[str, Any]:
    """A task-failure context as the task runner passes it (real TI and DagRun objects)."""
    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        task = BaseOperator(task_id=task_id)
    now = pendulum.now("UTC")
    dag_run = DagRun.model_construct(
        dag_id=DAG_ID,
        run_id=run_id,
        logical_date=now,
        run_after=now,
        start_date=now,
        run_type="manual",
        state="running",
        clear_number=clear_number,
        conf={"business_date": NIGHT.isoformat(), "landing": "/srv/landing"},
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=DAG_ID,
        run_id=run_id,
        try_number=3 * (clear_number + 1),  # three tries per clearing
        map_index=-1,
        max_tries=2,
        task=task,
        _ti_context_from_server=TIRunContext.model_construct(dag_run=dag_run, max_tries=2),
    )
    ctx = {"dag": dag, "task": task, "ti": ti, "task_instance": ti, "dag_run": dag_run, "run_id": run_id}
    ctx.update(logical_date=now, exception=exc)
    return ctx


def _run_failed(run_id: str, clear_number: int = 0) -> dict[str, Any]:
    ctx = _context("load_call_center_extracts", run_id, None, clear_number)
    del ctx["exception"]
    ctx["reason"] = "task_failure"
    return ctx


def _night_fails(notifier: QudaoAlertNotifier, run_id: str, clear_number: int = 0) -> None:
    """Both loaders fail on the unreachable server, then the DAG run fails."""
    for source in ("crm", "call_center"):  # what tasks.step attaches to a loader's crash
        down = psycopg.OperationalError('connection to server at "db.example", port 5432 failed')
        outcome = StepOutcome(f"load_{source}", "ingestion", NIGHT, "failed", (source,), (str(down),))
        notifier(_context(f"load_{source}_extracts", run_id, with_outcome(down, outcome), clear_number))
    notifier(_run_failed(run_id, clear_number))


def test_a_failed_run_alerts_once_and_again_after_it_is_cleared(db_url, webhook, tmp_path: Path) -> None:
    url, received = webhook
    env = {"QUDAO_ALERT_WEBHOOK_URL": url, "QUDAO_ALERT_LOG_FILE": str(tmp_path / "alerts.log")}
    notifier = QudaoAlertNotifier(warehouse_url=db_url, environ=env, run_grace_seconds=0)
    run_id = f"qudao__{NIGHT}__20261202T150405Z"

    _night_fails(notifier, run_id)
    assert [m["qudao"]["task_id"] for m in received] == ["load_crm_extracts"]

    _night_fails(notifier, run_id, clear_number=1)  # cleared in Airflow, fails again: a new failure
    assert [m["qudao"]["task_id"] for m in received] == ["load_crm_extracts", "load_crm_extracts"]
    with psycopg.connect(db_url) as conn:
        (n,) = conn.execute("select count(*) from ops.alert_log where run_id = %s", (run_id,)).fetchone()
    assert n == 2


def test_with_the_warehouse_unreachable_a_failed_run_still_alerts_once(
    webhook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    monkeypatch.setenv("QUDAO_HOME", str(tmp_path / "home"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {"QUDAO_ALERT_WEBHOOK_URL": url, "QUDAO_ALERT_LOG_FILE": str(tmp_path / "alerts.log")}
    notifier = QudaoAlertNotifier(
        warehouse_url=f"postgresql://postgres@127.0.0.1:{closed}/qudao", environ=env, run_grace_seconds=0
    )
    run_id = f"qudao__{NIGHT}__20261202T150405Z"

    _night_fails(notifier, run_id)
    _night_fails(notifier, run_id)  # every callback run twice: still nothing new

    (alert,) = received
    assert alert["qudao"]["task_id"] == "load_crm_extracts" and alert["qudao"]["kind"] == "ingestion"
    ledger = [
        json.loads(line) for line in (tmp_path / "home" / "alerts" / "ledger.jsonl").read_text().splitlines()
    ]
    assert [(e["run_id"], e["status"]) for e in ledger] == [(run_id, "failure")]
