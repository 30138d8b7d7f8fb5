"""The scale-out path: the nightly DAG on Airflow's CeleryExecutor gives the same marts.

A real Airflow deployment in miniature, as subprocesses with a temporary
``AIRFLOW_HOME``: PostgreSQL metadata database (fresh, on 127.0.0.1:5432), Redis
broker (127.0.0.1:6379, on a queue of its own), API server (the workers' execution
API), scheduler, DAG processor, triggerer (the extracts sensor is deferrable) and a
``airflow celery worker``. One night is triggered with ``airflow dags trigger``; its
published marts must equal those of the local path (``qudao run``, ``dag.test``) on
the same extracts. Both warehouses are fresh databases on the same networked server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest

from qudao.config import PROJECT_ROOT
from qudao.orchestration.airflow_env import airflow_env
from qudao.orchestration.runner import logical_date_for

pytestmark = pytest.mark.e2e

PG_URL = os.environ.get("QUDAO_E2E_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = ("127.0.0.1", 6379)
NIGHT = date(2026, 11, 2)
RUN_TIMEOUT = 300.0  # a loaded 2-core CI machine; it takes about a minute here


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _with_database(url: str, database: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{database}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the networked server; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield _with_database(PG_URL, name)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
            )
            admin.execute(f'drop database if exists "{name}"')


@dataclass
class CeleryAirflow:
    """Airflow's production components as subprocesses sharing one temporary home."""

    home: Path
    dags_folder: Path
    metadata_url: str  # postgresql://… of the metadata database
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        port = _free_port()
        sqlalchemy = self.metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        queue = f"qudao_e2e_{uuid.uuid4().hex[:8]}"  # isolates this run from other users of the broker
        overrides = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # only the run the test triggers: no scheduled run of today's night (it would take the
            # DAG's single active-run slot and wait hours for extracts that never come)
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
            **self.extra_env,
        }
        self.env = airflow_env(base={**os.environ, **overrides})
        self.queue = queue
        self.port = port

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """Run one ``airflow`` CLI command to completion; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def start(self) -> None:
        """Migrate the metadata database and start every component."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", timeout=180)
        components = {
            "api-server": ["api-server", "--port", str(self.port), "--host", "127.0.0.1"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
            "worker": ["celery", "worker", "--queues", self.queue, "--concurrency", "4"],
        }
        for name, args in components.items():
            log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self, tail: int = 2500) -> str:
        parts = []
        for name in self.procs:
            text = (self.home / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    def _check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited: {dead}\n{self.logs()}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the DAG processor has serialised ``dag_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with psycopg.connect(self.metadata_url) as c:
                if c.execute("select 1 from serialized_dag where dag_id = %s", (dag_id,)).fetchone():
                    return
            time.sleep(1)
        raise AssertionError(f"{dag_id} was never parsed\n{self.logs()}")

    def trigger(self, dag_id: str, conf: dict[str, str], logical_date: str) -> str:
        """Unpause and trigger ``dag_id``; the run id."""
        self.airflow("dags", "unpause", dag_id)
        run_id = f"celery_e2e__{logical_date}"
        self.airflow(
            "dags",
            "trigger",
            dag_id,
            "--conf",
            json.dumps(conf),
            "--logical-date",
            logical_date,
            "--run-id",
            run_id,
        )
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        """Until the run finishes; its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with psycopg.connect(self.metadata_url) as c:
                row = c.execute(
                    "select state from dag_run where dag_id = %s and run_id = %s", (dag_id, run_id)
                ).fetchone()
            if row and row[0] in ("success", "failed"):
                return str(row[0])
            time.sleep(2)
        raise AssertionError(f"{run_id} did not finish in {timeout} s\n{self.logs()}")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str, str]]:
        """task id -> (state, executor/queue it ran on)."""
        with psycopg.connect(self.metadata_url) as c:
            rows = c.execute(
                "select task_id, state, queue from task_instance where dag_id = %s and run_id = %s",
                (dag_id, run_id),
            ).fetchall()
        return {t: (s, q) for t, s, q in rows}


@pytest.fixture(scope="module")
def networked_services() -> None:
    if not _reachable(*REDIS):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (the Celery broker)")
    host, port = urlparse(PG_URL).hostname or "127.0.0.1", urlparse(PG_URL).port or 5432
    if not _reachable(host, port):
        pytest.skip(f"PostgreSQL is not reachable on {host}:{port} (Airflow metadata and warehouses)")


def _published_marts(url: str) -> dict[str, list[tuple]]:
    """Every table of ``marts`` with its rows, sorted (run-independent columns only)."""
    with psycopg.connect(url) as c:
        tables = [
            r[0] for r in c.execute("select tablename from pg_tables where schemaname = 'marts' order by 1")
        ]
        result = {}
        for t in tables:
            cols = [
                r[0]
                for r in c.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts'"
                    " and table_name = %s and column_name not in ('_run_id', '_published_at', '_built_at',"
                    " 'run_id', 'published_at', 'built_at', 'loaded_at', '_loaded_at')"
                    " order by ordinal_position",
                    (t,),
                )
            ]
            select = ", ".join(f'"{col}"::text' for col in cols)
            result[t] = sorted(c.execute(f"select {select} from marts.{t}").fetchall(), key=repr)
    return result


def test_nightly_dag_on_celery_matches_the_local_run(networked_services: None, tmp_path: Path) -> None:
    from qudao_demo import generate

    landing = tmp_path / "landing"
    generate(str(landing), NIGHT, NIGHT, scale="small", seed=7)
    conf = {"business_date": NIGHT.isoformat(), "landing": str(landing)}
    logical_date = logical_date_for(NIGHT).isoformat()
    fast = {
        "QUDAO_EXTRACTS_POKE_SECONDS": "2",
        "QUDAO_RETRY_DELAY_SECONDS": "1",
        "QUDAO_PII_KEY": secrets.token_hex(16),  # both runs hash phones with the same key
    }

    with fresh_database("qudao_e2e_local") as local_wh, fresh_database("qudao_e2e_celery") as celery_wh:
        local_env = {
            **os.environ,
            **fast,
            "QUDAO_WAREHOUSE_URL": local_wh,
            "QUDAO_HOME": str(tmp_path / "local"),
        }
        local_env.pop("AIRFLOW_HOME", None)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "qudao.cli",
                "run",
                "--landing",
                str(landing),
                "--date",
                NIGHT.isoformat(),
            ],
            env=local_env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        expected = _published_marts(local_wh)
        assert expected and all(expected.values()), "the local run published no mart rows"

        with fresh_database("qudao_e2e_meta") as meta:
            cluster = CeleryAirflow(
                home=tmp_path / "celery",
                dags_folder=PROJECT_ROOT / "dags",
                metadata_url=meta,
                extra_env={
                    **fast,
                    "QUDAO_WAREHOUSE_URL": celery_wh,
                    "QUDAO_HOME": str(tmp_path / "celery"),
                    "QUDAO_LANDING": str(landing),  # never the checkout's data/landing
                },
            )
            try:
                cluster.start()
                cluster.wait_for_dag("channel_nightly")
                run_id = cluster.trigger("channel_nightly", conf, logical_date)
                state = cluster.wait_for_run("channel_nightly", run_id)
                tasks = cluster.task_states("channel_nightly", run_id)
                assert state == "success", f"{tasks}\n{cluster.logs()}"
            finally:
                cluster.stop()

        assert {s for s, _ in tasks.values()} == {"success"}
        assert {q for _, q in tasks.values()} == {cluster.queue}  # every task went through the Celery queue
        assert _published_marts(celery_wh) == expected


if __name__ == "__main__":  # pragma: no cover - manual smoke test of the harness
    shutil.which("airflow")
