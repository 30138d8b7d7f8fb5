"""Operating ``qudao run``: one night at a time, clean interrupts, every run kept, crashes alert.

Real processes, real Airflow (``dag.test`` in the runner child), real signals and the
embedded PostgreSQL of a temporary ``QUDAO_HOME`` (each ``qudao run`` starts and stops
it). One landing zone of one small night serves the whole module; the tests run in
file order and the last one reads the Airflow history the others left:

1. two concurrent runs of one night: the second is refused at once, the first succeeds;
2. SIGTERM during the loads, 3. SIGINT during ``dbt build``: no process of the run's
   tree survives, no embedded server is left running, the log keeps what it had, the
   Airflow run and its unfinished tasks are failed, one line on the console;
4. the runner child killed (SIGKILL): the parent marks the run failed and sends one
   run-failure alert;
5. every one of those runs is in Airflow's history under its own run id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse import embedded
from qudao_testing.airflow_db import airflow_rows

pytestmark = pytest.mark.e2e

NIGHT = date(2026, 11, 15)
#: safety net for a wait that never ends (a broken run); no test asserts on durations
PATIENCE_SECONDS = 900


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("operate-night")
    landing, home = tmp / "landing", tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUDAO_", "AIRFLOW_", "AIRFLOW__"))}
    env.update(
        QUDAO_HOME=str(home),
        QUDAO_PII_KEY="e2e-test-key",
        QUDAO_RETRY_DELAY_SECONDS="1",
        QUDAO_EXTRACTS_POKE_SECONDS="1",
    )
    generate = subprocess.run(
        [sys.executable, "-m", "qudao.cli", "generate", "--landing", str(landing), "--scale", "small"]
        + [f"--{edge}={NIGHT}" for edge in ("start", "end")],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert generate.returncode == 0, generate.stderr
    log = home / "logs" / f"run-{NIGHT}-{NIGHT}.log"
    yield {"landing": landing, "home": home, "env": env, "log": log}
    embedded.stop(home)


def start_run(night: dict) -> subprocess.Popen[str]:
    landing, day = str(night["landing"]), str(NIGHT)
    return subprocess.Popen(
        # --force: every test runs the night through Airflow, also after it was published once
        [sys.executable, "-m", "qudao.cli", "run", "--landing", landing, "--date", day, "--force"],
        env=night["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )


def wait_for_log(log: Path, after: int, text: str, proc: subprocess.Popen[str]) -> None:
    """Until the log shows ``text`` beyond its first ``after`` bytes (fails if the run ends first)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if log.exists() and text.encode() in log.read_bytes()[after:]:
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(
                f"qudao run ended (exit {proc.returncode}) before its log showed {text!r}:\n{out}{err}"
            )
        time.sleep(0.5)
    pytest.fail(f"the log never showed {text!r}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=PATIENCE_SECONDS)
    return proc.returncode, out, err


def runner_child(proc: subprocess.Popen[str]) -> psutil.Process:
    (child,) = [
        p
        for p in psutil.Process(proc.pid).children()
        if "qudao.orchestration.runner" in " ".join(p.cmdline())
    ]
    return child


def airflow_runs(home: Path) -> list[tuple[str, str]]:
    return airflow_rows(
        home / "airflow" / "airflow.db",
        "select run_id, state from dag_run where dag_id = 'channel_nightly' order by id",
    )


def unfinished_tasks(home: Path, run_id: str) -> list[tuple[str, str | None]]:
    return airflow_rows(
        home / "airflow" / "airflow.db",
        "select task_id, state from task_instance where run_id = ?"
        " and (state is null or state not in ('success', 'failed', 'upstream_failed', 'skipped'))",
        (run_id,),
    )


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_second_run_of_the_night_is_refused_and_the_first_completes(night: dict) -> None:
    first = start_run(night)
    wait_for_log(night["log"], 0, "starting the nightly run", first)
    second = start_run(night)
    code, out, err = finish(second)
    assert code == 75, out + err
    assert out == "", "refused before it starts or prints anything"
    (line,) = err.splitlines()
    assert line.startswith(f"night {NIGHT} is already running (pid {first.pid}, started "), line
    code, out, err = finish(first)
    assert code == 0, out[-3000:] + err[-3000:]
    assert "1 of 1 night(s) succeeded" in out
    assert embedded.running_state(night["home"]) is None, "the run stops the server it started"


@pytest.mark.parametrize(
    ("signum", "moment"),
    [(signal.SIGTERM, "crm.channel_managers"), (signal.SIGINT, "dbt build")],
    ids=["SIGTERM-while-loading", "SIGINT-during-dbt-build"],
)
def test_an_interrupt_stops_everything_and_marks_the_night_failed(
    night: dict, signum: signal.Signals, moment: str
) -> None:
    before = night["log"].read_bytes()
    runs_before = airflow_runs(night["home"])
    proc = start_run(night)
    wait_for_log(night["log"], len(before), moment, proc)
    assert embedded.running_state(night["home"]) is not None
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) >= 2  # qudao run and its runner child

    proc.send_signal(signum)
    code, out, err = finish(proc)

    assert code == 128 + signum
    assert alive(tree) == []
    assert embedded.running_state(night["home"]) is None
    after = night["log"].read_bytes()
    assert after.startswith(before) and len(after) > len(before), "the log is appended to, never truncated"
    (line,) = err.splitlines()
    assert line == f"interrupted ({signum.name}): night {NIGHT} marked failed; log: {night['log']}"
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    runs = airflow_runs(night["home"])
    assert runs[: len(runs_before)] == runs_before, "earlier runs of the night are kept"
    (new_run, state) = runs[-1]
    assert len(runs) == len(runs_before) + 1 and state == "failed"
    assert unfinished_tasks(night["home"], new_run) == []


def test_a_crashed_runner_marks_the_night_failed_and_alerts_once(night: dict) -> None:
    before = len(night["log"].read_bytes())
    proc = start_run(night)
    wait_for_log(night["log"], before, "dbt build", proc)
    runner_child(proc).kill()
    code, out, err = finish(proc)

    assert code == 1, out[-2000:] + err[-2000:]
    assert "runner crashed" in out and "Traceback" not in out + err
    (run_id, state) = airflow_runs(night["home"])[-1]
    assert state == "failed" and unfinished_tasks(night["home"], run_id) == []
    alerts = night["home"] / "alerts" / "alerts.log"
    entries = [json.loads(line) for line in alerts.read_text().splitlines()]
    mine = [e for e in entries if e["run_id"] == run_id]
    assert [(e["kind"], e["status"]) for e in mine] == [("run", "failure")], mine
    assert "the runner process died (exit status -9)" in mine[0]["body"]
    assert embedded.running_state(night["home"]) is None


def test_every_run_of_the_night_is_kept_in_airflow_history(night: dict) -> None:
    runs = airflow_runs(night["home"])
    assert [state for _, state in runs] == ["success", "failed", "failed", "failed"]
    run_ids = [r for r, _ in runs]
    assert len(set(run_ids)) == 4
    assert all(r.startswith(f"qudao__{NIGHT}__") for r in run_ids), run_ids
