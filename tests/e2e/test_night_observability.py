"""What a night shows outside the warehouse: lineage, assets, task logs (issue 15).

A real ``qudao run`` of one generated night with ``OPENLINEAGE_URL`` pointed at an HTTP
receiver this test starts (it answers like Marquez's ``POST /api/v1/lineage``):

- every OpenLineage event validates against the specification's JSON schema, and the
  events' inputs and outputs chain landing files → raw → staging → intermediate →
  marts_candidate → marts for the coverage and active-agents marts;
- each raw table gets an Airflow asset event naming the night;
- each task's log is where the Airflow UI reads it, read here by Airflow's own log reader;
- the Airflow UI itself (api-server on the night's metadata, headless Chromium) shows the
  run with its real duration and the task's log lines. With ``QUDAO_UI_SCREENSHOTS=<dir>``
  the screenshots are kept there (how ``docs/images/`` was made).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse import embedded
from qudao_testing.airflow_db import airflow_rows

pytestmark = pytest.mark.e2e

NIGHT = date(2026, 11, 2)
SCHEMA = Path(__file__).parents[1] / "fixtures" / "openlineage" / "OpenLineage.json"


class _Receiver(BaseHTTPRequestHandler):
    events: ClassVar[list[dict]] = []
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        type(self).events.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("openlineage")
    landing, home = tmp / "landing", tmp / "home"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUDAO_", "AIRFLOW_", "AIRFLOW__", "OPENLINEAGE"))
    }
    env.update(
        QUDAO_HOME=str(home),
        QUDAO_PII_KEY="e2e-test-key",
        QUDAO_RETRY_DELAY_SECONDS="1",
        OPENLINEAGE_URL=f"http://127.0.0.1:{server.server_address[1]}",
    )
    try:
        for args in (
            ("generate", "--landing", str(landing), "--start", str(NIGHT), "--end", str(NIGHT)),
            ("run", "--landing", str(landing), "--date", str(NIGHT)),
        ):
            out = subprocess.run(
                [sys.executable, "-m", "qudao.cli", *args],
                env=env,
                capture_output=True,
                text=True,
                cwd=PROJECT_ROOT,
            )
            assert out.returncode == 0, out.stdout + out.stderr
        (tmp / "events.json").write_text(json.dumps(_Receiver.events, indent=1))  # to read on a failure
        events, paths = list(_Receiver.events), list(_Receiver.paths)
        yield {"events": events, "paths": paths, "landing": landing, "home": home, "env": env}
    finally:
        server.shutdown()
        embedded.stop(home)


def _table(name: str) -> str:
    """``schema.table`` of an OpenLineage dataset name ``database.schema.table``."""
    return ".".join(name.split(".")[-2:])


def _edges(events: list[dict]) -> set[tuple[str, str]]:
    """(input, output) of every completed run: ``schema.table`` for tables, the path for files."""
    out = set()
    for e in events:
        if e.get("eventType") != "COMPLETE":
            continue
        for i in e.get("inputs", []):
            for o in e.get("outputs", []):
                src = i["name"] if i["namespace"] == "file" else _table(i["name"])
                out.add((src, _table(o["name"])))
    return out


def _paths(edges: set[tuple[str, str]], start: str, end: str) -> list[list[str]]:
    """Every path from ``start`` to ``end`` along ``edges`` (the graph is a DAG)."""
    nexts: dict[str, list[str]] = {}
    for a, b in edges:
        nexts.setdefault(a, []).append(b)
    found, stack = [], [[start]]
    while stack:
        path = stack.pop()
        if path[-1] == end:
            found.append(path)
            continue
        stack += [[*path, n] for n in nexts.get(path[-1], []) if n not in path]
    return found


def test_every_event_validates_against_the_openlineage_schema(lineage) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert len(lineage["events"]) > 50  # the tasks' and the dbt nodes' START and COMPLETE
    assert set(lineage["paths"]) == {"/api/v1/lineage"}
    errors = [
        f"{e['job']['name']}: {err.message}" for e in lineage["events"] for err in validator.iter_errors(e)
    ]
    assert errors == []


@pytest.mark.parametrize("mart", ["mart_channel_coverage", "mart_active_second_tier_agents"])
@pytest.mark.parametrize("raw", ["raw.crm__partners", "raw.dealer_sales__orders"])
def test_the_events_chain_raw_through_each_layer_to_the_published_mart(lineage, mart: str, raw: str) -> None:
    edges = _edges(lineage["events"])
    paths = _paths(edges, raw, f"marts.{mart}")
    assert paths, f"no lineage from {raw} to marts.{mart}"
    layers = [[name.split(".")[0] for name in path] for path in paths]
    # dbt reads raw only through staging; publish copies the candidate into marts
    assert all(lay[1] == "staging" and lay[-2:] == ["marts_candidate", "marts"] for lay in layers), paths
    assert any("intermediate" in lay for lay in layers), paths


def test_each_load_task_reads_its_own_landing_files_into_its_raw_tables(lineage) -> None:
    landing = lineage["landing"].resolve()
    for source in ("crm", "call_center", "dealer_sales"):
        (done,) = [
            e
            for e in lineage["events"]
            if e["job"]["name"] == f"channel_nightly.load_{source}_extracts" and e["eventType"] == "COMPLETE"
        ]
        files = {Path(i["name"]).relative_to(landing).parts[:2] for i in done["inputs"]}
        tables = {_table(o["name"]) for o in done["outputs"]}
        assert files == {(source, str(NIGHT))}, done["inputs"]
        assert tables and all(t.startswith(f"raw.{source}__") for t in tables), tables
    edges = _edges(lineage["events"])
    orders = landing / "dealer_sales" / str(NIGHT)
    assert any(src.startswith(str(orders)) and dst == "raw.dealer_sales__orders" for src, dst in edges)


def test_the_dbt_models_are_children_of_build_marts(lineage) -> None:
    events = lineage["events"]
    build = {
        e["run"]["runId"]
        for e in events
        if e["job"]["name"] == "channel_nightly.build_marts" and e["eventType"] == "START"
    }
    assert len(build) == 1
    models = [
        e for e in events if "mart_channel_coverage" in e["job"]["name"] and e["eventType"] == "COMPLETE"
    ]
    assert models, "no event of the coverage model"
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in models} <= build


def test_each_raw_table_gets_an_asset_event_naming_the_night_and_its_rows(lineage) -> None:
    from qudao.contracts import entities_of

    rows = airflow_rows(
        lineage["home"] / "airflow" / "airflow.db",
        "select a.uri, e.extra from asset_event e join asset a on a.id = e.asset_id"
        " where a.uri like 'qudao://warehouse/raw/%'",
    )
    events = {uri.rsplit("/", 1)[1]: json.loads(extra) for uri, extra in rows}
    expected = {e.raw_table for source in ("crm", "call_center", "dealer_sales") for e in entities_of(source)}
    assert set(events) == expected and len(rows) == len(expected)  # one event per table and night
    assert {e["business_date"] for e in events.values()} == {str(NIGHT)}
    # the generator's orders file of the night, counted here without qudao's loader
    orders = lineage["landing"] / "dealer_sales" / str(NIGHT) / "orders.csv"
    lines = [line for line in orders.read_text(encoding="utf-8-sig").splitlines()[1:] if line.strip()]
    assert events["dealer_sales__orders"]["rows_loaded"] == len(lines) > 0


_READ_LOGS = """
import json, sys
from airflow.models.taskinstance import TaskInstance
from airflow.utils.log.log_reader import TaskLogReader
from airflow.utils.session import create_session

with create_session() as session:
    out = {}
    for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == "channel_nightly"):
        chunks, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {})
        out[ti.task_id] = [m.model_dump(mode="json") for m in chunks]
print(json.dumps(out))
"""


def test_each_task_log_is_where_the_airflow_ui_reads_it(lineage) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _READ_LOGS],
        env=_airflow_env(lineage),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert out.returncode == 0, out.stderr
    logs = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"load_dealer_sales_extracts", "build_marts", "publish_marts"} <= set(logs)
    events = {task: [m.get("event", "") for m in messages] for task, messages in logs.items()}
    assert all("Task started" in e for e in events.values()), events
    # the task's own progress lines, as qudao run printed them
    assert any(
        e.startswith(f"{NIGHT}: dealer_sales: ") and "rows loaded" in e
        for e in events["load_dealer_sales_extracts"]
    )
    assert any("published" in e for e in events["publish_marts"]), events["publish_marts"]


def _airflow_env(lineage: dict) -> dict[str, str]:
    airflow = lineage["home"] / "airflow"  # where qudao run kept Airflow's metadata and logs
    return {
        **lineage["env"],
        "AIRFLOW_HOME": str(airflow),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow / "logs"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def _chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run(
        [*base, "--window-size=1600,1000", "--virtual-time-budget=20000", *args, url],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on this machine")
def test_the_ui_shows_the_run_with_its_real_duration_and_each_task_log(lineage, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**_airflow_env(lineage), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{api}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the api-server did not start"
                time.sleep(2)
        with urllib.request.urlopen(f"{api}/api/v2/dags/channel_nightly/dagRuns", timeout=30) as r:
            (run,) = json.load(r)["dag_runs"]
        # the real duration: qudao run's logical date is when it ran, not the back-dated night
        assert 10 < run["duration"] < 1800, run

        page = f"{api}/dags/channel_nightly/runs/{run['dag_run_id']}"
        grid = _chromium(page, "--dump-dom").stdout
        assert "build_marts" in grid and "publish_marts" in grid, grid[:2000]
        log = _chromium(f"{page}/tasks/build_marts", "--dump-dom").stdout
        assert f"{NIGHT}: dbt build: ok" in log, log[:2000]  # the task's own line in the Logs tab

        shots = Path(os.environ.get("QUDAO_UI_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        for name, url in (
            ("nightly-run-grid.png", page),
            ("nightly-task-log.png", f"{page}/tasks/build_marts"),
        ):
            _chromium(url, f"--screenshot={shots / name}")
            data = (shots / name).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 60_000, name  # not a blank page
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
