"""Alerts reach a real SMTP server and a real HTTP webhook, say what broke, once, and recover once."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pendulum
import psycopg
import pytest
from aiosmtpd.controller import Controller
from airflow.sdk import DAG
from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
from airflow.sdk.bases.operator import BaseOperator
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from qudao.alerts import QudaoAlertNotifier
from qudao.alerts.notifier import AlertDeliveryError
from qudao.ledger.outcomes import StepOutcome
from qudao.orchestration.extracts import missing_error
from qudao.orchestration.failures import StepError, with_outcome
from qudao.orchestration.tasks import GateFailed
from qudao.quality.results import CheckResult, GateResult, record

DAG_ID = "channel_nightly"
NIGHT = date(2026, 11, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    """aiosmtpd handler keeping every received message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def channels(smtp, webhook, tmp_path: Path):
    """Environment for the notifier plus the inboxes (emptied for each test)."""
    port, inbox = smtp
    url, received = webhook
    inbox.messages.clear()
    received.clear()
    env = {
        "QUDAO_SMTP_HOST": "127.0.0.1",
        "QUDAO_SMTP_PORT": str(port),
        "QUDAO_ALERT_FROM": "qudao@example.test",
        "QUDAO_ALERT_EMAIL_TO": "data-team@example.test",
        "QUDAO_ALERT_EMAIL_TO_DEALER_SALES": "dealer-sales-owner@example.test",
        "QUDAO_ALERT_EMAIL_TO_CRM": "crm-owner@example.test",
        "QUDAO_ALERT_WEBHOOK_URL": url,
        "QUDAO_ALERT_TIMEOUT_SECONDS": "5",
        "QUDAO_ALERT_LOG_FILE": str(tmp_path / "alerts.log"),
    }
    return env, inbox.messages, received


def _context(task_id: str, run_id: str, business_date: date, exc: BaseException | None) -> dict[str, Any]:
    """A task-failure context as the task runner passes it: real TI and DagRun objects."""
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
        conf={"business_date": business_date.isoformat(), "landing": "/srv/landing"},
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=DAG_ID,
        run_id=run_id,
        try_number=1,
        map_index=-1,
        max_tries=0,
        task=task,
        _ti_context_from_server=TIRunContext.model_construct(dag_run=dag_run, max_tries=0),
    )
    ctx = {"dag": dag, "task": task, "ti": ti, "task_instance": ti, "dag_run": dag_run, "run_id": run_id}
    ctx["logical_date"] = now
    ctx["exception"] = exc
    return ctx


def _dag_context(run_id: str, business_date: date, reason: str) -> dict[str, Any]:
    """A DAG-callback context (the DAG processor adds ``reason``)."""
    ctx = _context("report_run", run_id, business_date, None)
    del ctx["exception"]
    ctx["reason"] = reason
    return ctx


def _failed_gate(conn: psycopg.Connection, run_id: str) -> GateResult:
    gate = GateResult(
        run_id=run_id,
        business_date=NIGHT,
        stage="all",
        results=[
            CheckResult("raw.dealer_sales__orders", "order_id_unique", "error", True, "0", "0"),
            CheckResult(
                "raw.dealer_sales__orders",
                "quantity_positive",
                "error",
                False,
                observed="37 rows",
                expected="0 rows with quantity <= 0",
                detail="min quantity -5",
            ),
            CheckResult("raw.call_center__calls", "volume_band", "warn", False, "412 rows", "900..1500 rows"),
        ],
        data_docs_path=Path("data_docs/local_site/index.html"),
    )
    record(conn, gate)
    conn.execute(
        "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256, size_bytes,"
        " status, error, quarantined_to) values ('dealer_sales', 'inventory', %s, 'x/inventory.csv',"
        " 'inventory.csv', 'abc', 10, 'refused', 'missing required column sku_code',"
        " '_quarantine/dealer_sales/2026-11-02/inventory.csv')",
        (NIGHT,),
    )
    return gate


def _alert_log(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select dedupe_key, kind, status, channels from ops.alert_log order by alert_id"
    ).fetchall()


def test_gate_failure_alert_is_sent_once_then_recovery_once(db_url, conn, channels) -> None:
    env, mails, hooks = channels
    run_id = "scheduled__2026-11-02T18:00:00+00:00"
    gate = _failed_gate(conn, run_id)
    notifier = QudaoAlertNotifier(warehouse_url=db_url, environ=env, run_grace_seconds=0)

    ctx = _context("check_quality", run_id, NIGHT, GateFailed("\n".join(gate.lines())))
    notifier(ctx)

    assert len(mails) == 1 and len(hooks) == 1
    rcpt, msg = mails[0]
    assert sorted(rcpt) == ["data-team@example.test", "dealer-sales-owner@example.test"]
    assert msg["Subject"] == (
        "[qudao] FAILED channel_nightly 2026-11-02:"
        " quality gate blocked publishing (1 failed check, 1 warning)"
    )
    body = msg.get_content()
    assert f"DAG channel_nightly, business date 2026-11-02, run {run_id}" in body
    assert "Task check_quality failed (try 1 of 1, no retries left)" in body
    assert (
        "FAIL [error] raw.dealer_sales__orders :: quantity_positive — observed 37 rows,"
        " expected 0 rows with quantity <= 0 (min quantity -5)"
    ) in body
    assert (
        "WARN [warn] raw.call_center__calls :: volume_band — observed 412 rows, expected 900..1500 rows"
        in body
    )
    assert "order_id_unique" not in body  # passed checks are not listed
    assert "dealer_sales/inventory.csv: refused — missing required column sku_code" in body
    assert "Data Docs: data_docs/local_site/index.html" in body
    assert "Task log: http://" in body and "/tasks/check_quality?try_number=1" in body
    assert "qudao republish --date 2026-11-02" in body
    assert "Nothing was published for 2026-11-02" in body

    payload = hooks[0]
    assert payload["text"].startswith("[qudao] FAILED channel_nightly 2026-11-02: quality gate")
    fields = payload["qudao"]
    assert (fields["kind"], fields["status"], fields["business_date"]) == (
        "quality_gate",
        "failure",
        "2026-11-02",
    )
    assert [(c["check"], c["observed"]) for c in fields["details"]["failed_checks"]] == [
        ("quantity_positive", "37 rows"),
        ("volume_band", "412 rows"),
    ]
    assert fields["details"]["refused_files"][0]["error"] == "missing required column sku_code"

    # the same task try again (callback re-run), then the DAG-level failure callback: nothing new
    notifier(_context("check_quality", run_id, NIGHT, GateFailed("\n".join(gate.lines()))))
    QudaoAlertNotifier(warehouse_url=db_url, environ=env, run_grace_seconds=0)(
        _dag_context(run_id, NIGHT, "task_failure")
    )
    assert len(mails) == 1 and len(hooks) == 1
    log = _alert_log(conn)
    assert [(k, kind, st) for k, kind, st, _ in log] == [
        (f"task:channel_nightly:{run_id}:check_quality:-1:1", "quality_gate", "failure")
    ]
    assert log[0][3]["email"].startswith("sent to ") and log[0][3]["webhook"] == "posted (HTTP 200)"

    # the next night succeeds: one recovery notice, once
    next_run = "scheduled__2026-11-03T18:00:00+00:00"
    QudaoAlertNotifier(warehouse_url=db_url, environ=env)(
        _dag_context(next_run, date(2026, 11, 3), "success")
    )
    assert len(mails) == 2 and len(hooks) == 2
    rcpt, msg = mails[1]
    assert rcpt == ["data-team@example.test"]
    assert msg["Subject"] == (
        "[qudao] RECOVERED channel_nightly 2026-11-03: night published after the earlier failure"
    )
    body = msg.get_content()
    assert f"business date 2026-11-02, run {run_id}" in body
    assert hooks[1]["qudao"]["status"] == "recovery"
    QudaoAlertNotifier(warehouse_url=db_url, environ=env)(
        _dag_context(next_run, date(2026, 11, 3), "success")
    )
    assert len(mails) == 2 and len(hooks) == 2

    # a night that passed with a warning: a digest to the data team, once; a clean night: nothing
    third = "scheduled__2026-11-04T18:00:00+00:00"
    warn = CheckResult("marts.fct_orders", "volume_band", "warn", False, "12 rows", "40..60 rows")
    record(conn, GateResult(third, date(2026, 11, 4), "all", [warn]))
    notifier = QudaoAlertNotifier(warehouse_url=db_url, environ=env)
    for _ in range(2):
        notifier(_dag_context(third, date(2026, 11, 4), "success"))
    fourth = "scheduled__2026-11-05T18:00:00+00:00"
    QudaoAlertNotifier(warehouse_url=db_url, environ=env)(_dag_context(fourth, date(2026, 11, 5), "success"))
    assert len(mails) == 3 and len(hooks) == 3
    assert mails[2][1]["Subject"] == "[qudao] published channel_nightly 2026-11-04 with 1 warning"
    body = mails[2][1].get_content()
    assert "WARN [warn] marts.fct_orders :: volume_band — observed 12 rows, expected 40..60 rows" in body
    assert [st for _, _, st, _ in _alert_log(conn)] == ["failure", "recovery", "notice"]


def test_unreachable_smtp_still_delivers_the_webhook(db_url, conn, channels) -> None:
    env, mails, hooks = channels
    env = {**env, "QUDAO_SMTP_PORT": str(_free_port())}  # nothing listens there
    run_id = "manual__2026-11-05"
    missing = missing_error("/srv/landing", "2026-11-05", ["crm.partners", "dealer_sales.orders"])
    ctx = _context("wait_for_extracts", run_id, date(2026, 11, 5), missing)

    QudaoAlertNotifier(warehouse_url=db_url, environ=env)(ctx)  # does not raise: the webhook got it

    assert mails == [] and len(hooks) == 1
    fields = hooks[0]["qudao"]
    assert fields["kind"] == "extracts_missing"
    assert fields["details"]["missing_entities"] == ["crm.partners", "dealer_sales.orders"]
    assert fields["sources"] == ["crm", "dealer_sales"]
    text = hooks[0]["text"]
    assert text.startswith(
        "[qudao] FAILED channel_nightly 2026-11-05: extracts missing at the deadline:"
        " crm.partners, dealer_sales.orders"
    )
    assert "/srv/landing/crm/2026-11-05/partners.*" in text
    (channels_row,) = [c for _, _, _, c in _alert_log(conn)]
    assert channels_row["email"].startswith("FAILED: ConnectionRefusedError")
    assert channels_row["webhook"] == "posted (HTTP 200)"


def test_no_channel_configured_writes_the_local_file_and_total_failure_raises(
    db_url, server_url, tmp_path, monkeypatch
) -> None:
    for name in (
        "QUDAO_SMTP_HOST",
        "QUDAO_ALERT_WEBHOOK_URL",
        "QUDAO_ALERT_EMAIL_TO",
        "QUDAO_ALERT_LOG_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUDAO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)
    crashed = StepOutcome("build_marts", "dbt", date(2026, 11, 6), "failed", failed=("x",))
    ctx = _context(
        "build_marts", "manual__2026-11-06", date(2026, 11, 6), StepError("dbt build failed:\nx", crashed)
    )

    QudaoAlertNotifier()(ctx)  # configuration from the environment only

    lines = (tmp_path / "home" / "alerts" / "alerts.log").read_text().splitlines()
    (entry,) = [json.loads(line) for line in lines]
    assert entry["kind"] == "dbt" and entry["business_date"] == "2026-11-06"
    assert entry["subject"] == "[qudao] FAILED channel_nightly 2026-11-06: dbt build failed"

    env = {
        "QUDAO_SMTP_HOST": "127.0.0.1",
        "QUDAO_SMTP_PORT": str(_free_port()),
        "QUDAO_ALERT_EMAIL_TO": "data-team@example.test",
        "QUDAO_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{_free_port()}/hook",
        "QUDAO_ALERT_LOG_FILE": str(tmp_path / "fallback.log"),
    }
    timeout = StepOutcome("publish_marts", "publish", date(2026, 11, 6), "failed", failed=("lock timeout",))
    exc = with_outcome(RuntimeError("lock timeout"), timeout)  # what tasks.step attaches to a crash
    ctx = _context("publish_marts", "manual__2026-11-06__2", date(2026, 11, 6), exc)
    with pytest.raises(AlertDeliveryError, match="reached no channel"):
        QudaoAlertNotifier(warehouse_url=db_url, environ=env)(ctx)
    (entry,) = [json.loads(line) for line in (tmp_path / "fallback.log").read_text().splitlines()]
    assert entry["kind"] == "publish" and entry["channels"]["webhook"].startswith("FAILED")


def test_deadline_callback_and_uncovered_run_failure(db_url, conn, channels, monkeypatch) -> None:
    """The deadline alert as Airflow's SyncCallback runs it; a run failure no task alert covered."""
    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    env, mails, hooks = channels
    for name in ("QUDAO_SMTP_HOST", "QUDAO_ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)
    monkeypatch.setenv("QUDAO_ALERT_WEBHOOK_URL", env["QUDAO_ALERT_WEBHOOK_URL"])
    monkeypatch.setenv("QUDAO_ALERT_LOG_FILE", env["QUDAO_ALERT_LOG_FILE"])
    dag_run = {
        "dag_id": DAG_ID,
        "run_id": "scheduled__2026-11-07T18:00:00+00:00",
        "logical_date": "2026-11-07T18:00:00Z",
        "conf": {},
    }
    context = {"dag_run": dag_run, "deadline": {"id": "d1", "deadline_time": "2026-11-07T23:00:00Z"}}
    ok, err = execute_callback(
        "qudao.alerts.QudaoAlertNotifier", {"context": context}, None, None, structlog.get_logger()
    )
    assert (ok, err) == (True, None)
    (payload,) = hooks
    # logical date 2026-11-08 02:00 Shanghai → business date 2026-11-07
    assert payload["text"].startswith(
        "[qudao] FAILED channel_nightly 2026-11-07: marts not published by the deadline"
    )
    assert payload["qudao"]["kind"] == "deadline"

    conn.execute(
        "insert into ops.publish_log (run_id, business_date, status, tables)"
        " values ('r', '2026-11-08', 'published', '{}')"
    )
    late = {
        **dag_run,
        "run_id": "scheduled__2026-11-08T18:00:00+00:00",
        "logical_date": "2026-11-08T18:00:00Z",
    }
    QudaoAlertNotifier(warehouse_url=db_url)({"dag_run": late, "deadline": {"id": "d2"}})
    assert len(hooks) == 1  # published meanwhile: no deadline alert

    ctx = _dag_context("manual__2026-11-09", date(2026, 11, 9), "timed_out")
    QudaoAlertNotifier(warehouse_url=db_url, run_grace_seconds=0)(ctx)
    assert len(hooks) == 2 and mails == []
    assert hooks[1]["qudao"]["kind"] == "run"
    assert "The DAG run failed (reason: timed_out)." in hooks[1]["text"]

    # the next night passes with a warning: one recovery notice (mentioning it), even if called twice
    warned = "scheduled__2026-11-10T18:00:00+00:00"
    warn = CheckResult("marts.fct_orders", "volume_band", "warn", False, "12 rows", "40..60 rows")
    record(conn, GateResult(warned, date(2026, 11, 10), "all", [warn]))
    for _ in range(2):
        QudaoAlertNotifier(warehouse_url=db_url)(_dag_context(warned, date(2026, 11, 10), "success"))
    assert len(hooks) == 3
    assert hooks[2]["text"].startswith("[qudao] RECOVERED channel_nightly 2026-11-10:")
    assert "run manual__2026-11-09) is resolved" in hooks[2]["text"]
    assert "WARN [warn] marts.fct_orders :: volume_band — observed 12 rows" in hooks[2]["text"]


def test_a_renamed_load_task_still_alerts_its_sources_owners(
    db_url, conn, channels, tmp_path, monkeypatch
) -> None:
    """Routing follows the step's typed outcome, not the task id: rename the task, the owners still hear."""
    import importlib.util

    import qudao.ingest
    from qudao.config import PROJECT_ROOT

    env, mails, hooks = channels
    for name, value in env.items():  # the DAG's own notifier reads the environment
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)
    source = (PROJECT_ROOT / "dags" / "channel_nightly.py").read_text(encoding="utf-8")
    assert source.count("load_crm_extracts") == 2  # its definition and its use
    copy = tmp_path / "renamed_nightly.py"
    copy.write_text(source.replace("load_crm_extracts", "ingest_crm_files"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("renamed_nightly", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = module.channel_nightly().get_task("ingest_crm_files")

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qudao.ingest, "load_date", disk_full)  # the loader's disk fills up
    run_id = "scheduled__2026-11-12T18:00:00+00:00"
    ctx = _context("ingest_crm_files", run_id, date(2026, 11, 12), None)
    with pytest.raises(OSError) as failed:
        task.python_callable(**ctx)
    ctx["exception"] = failed.value
    callbacks = task.on_failure_callback
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        callback(ctx)

    (step,) = conn.execute(
        "select step, kind, sources, business_date from ops.run_log where run_id = %s", (run_id,)
    ).fetchall()
    assert step == ("load_crm", "ingestion", ["crm"], date(2026, 11, 12))
    ((rcpt, msg),) = mails
    assert sorted(rcpt) == ["crm-owner@example.test", "data-team@example.test"]
    assert msg["Subject"].strip() == "[qudao] FAILED channel_nightly 2026-11-12: loading crm extracts failed"
    assert "Task ingest_crm_files failed" in msg.get_content()
    (payload,) = hooks
    assert (payload["qudao"]["kind"], payload["qudao"]["sources"]) == ("ingestion", ["crm"])
