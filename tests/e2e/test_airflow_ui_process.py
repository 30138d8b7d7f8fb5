"""The local Airflow UI (``make ui`` = ``qudao airflow standalone``): loopback only, private, stopped whole.

A real ``qudao airflow standalone`` in a temporary ``QUDAO_HOME``, started from a
shell whose PATH lacks the virtualenv (a fresh terminal), then stopped with
SIGTERM: every process of its tree recorded before the signal must be gone.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from qudao.orchestration.airflow_env import LOCAL_HOST, PASSWORDS_FILE, airflow_env
from qudao_testing.airflow_db import airflow_rows

pytestmark = pytest.mark.e2e

START_TIMEOUT = 600.0  # a loaded 2-core CI machine: migrating and starting four components
LOOPBACK = {"127.0.0.1", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_airflow_env_binds_loopback_and_finds_this_venvs_airflow() -> None:
    env = airflow_env(base={"PATH": "/usr/bin:/bin"})
    assert env["AIRFLOW__API__HOST"] == LOCAL_HOST == "127.0.0.1"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert (Path(env["PATH"].split(os.pathsep)[0]) / "airflow").exists()
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"


def _jobs_running(db: Path) -> set[str]:
    """Airflow job types with a running job (the scheduler, triggerer, dag-processor loops)."""
    if not db.exists():
        return set()
    try:
        return {r[0] for r in airflow_rows(db, "select job_type from job where state = 'running'")}
    except sqlite3.Error:  # not migrated yet
        return set()


def _listening(tree: list[psutil.Process]) -> set[tuple[str, int, str]]:
    found = set()
    for proc in tree:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port, proc.name()))
        except psutil.Error:
            continue
    return found


def _tree(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


@pytest.fixture
def standalone(tmp_path: Path, server_url: str) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    home = tmp_path / "home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PATH="/usr/bin:/bin",  # a fresh shell: no .venv/bin
        QUDAO_HOME=str(home),
        QUDAO_WAREHOUSE_URL=server_url,
        AIRFLOW__API__PORT=str(port),
    )
    qudao = Path(sys.executable).parent / "qudao"
    log = open(tmp_path / "standalone.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(qudao), "airflow", "standalone"], env=env, stdout=log, stderr=log)
    try:
        yield proc, home / "airflow", port
    finally:
        if proc.poll() is None:  # the test failed before stopping it: leave nothing behind
            tree = [proc, *psutil.Process(proc.pid).children(recursive=True)]
            for p in tree:
                p.kill()
            psutil.wait_procs(tree, timeout=30)
        log.close()


def test_standalone_listens_on_loopback_only_keeps_secrets_private_and_stops_whole(
    standalone: tuple[subprocess.Popen[bytes], Path, int], tmp_path: Path
) -> None:
    proc, airflow_home, port = standalone
    wanted = {"SchedulerJob", "TriggererJob", "DagProcessorJob"}
    deadline = time.monotonic() + START_TIMEOUT
    while not (
        wanted <= _jobs_running(airflow_home / "airflow.db")
        and (airflow_home / PASSWORDS_FILE).exists()
        and port in {p for _, p, _ in _listening(_tree(proc))}
    ):
        assert proc.poll() is None, (tmp_path / "standalone.log").read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "standalone did not come up"
        time.sleep(2)

    tree = _tree(proc)
    listening = _listening(tree)
    assert {ip for ip, _, _ in listening} <= LOOPBACK, listening
    assert (LOCAL_HOST, port) in {(ip, p) for ip, p, _ in listening}
    components = psutil.Process(proc.pid).children()
    assert len(components) == 4  # api-server, scheduler, dag-processor, triggerer
    assert len(tree) > 1 + len(components)  # and their own children (executor workers, …)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert stat.S_IMODE(airflow_home.stat().st_mode) == 0o700
    for name in ("airflow.db", PASSWORDS_FILE, "airflow.cfg"):
        path = airflow_home / name
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, name
