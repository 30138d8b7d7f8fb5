"""Run the nightly DAG through Airflow for one or more business dates.

``qudao run`` calls :func:`run_nightly`, which starts one child process (this
module's ``__main__``) that loads the DAG the way ``airflow dags test`` does and
runs it once per business date, in order. Airflow's own start-up (about 20 s)
is paid once per range, not per night. The child's full log is appended to a file
(a header line per run); lines starting with :data:`PROGRESS` are echoed so that
long work shows progress. Why a night failed is read from the ledger afterwards (the
failed step's typed outcome, :attr:`NightResult.failure`), not from the child's output.

Every night gets a run id of its own (:func:`run_id_for`) and a logical date of
"now", so Airflow keeps every run of a date in its history.

The child runs in a process group of its own. While :class:`Interruptible` is
active, SIGINT / SIGTERM of ``qudao run`` are forwarded to that group as SIGTERM;
the child exits at once; what is still alive after :data:`GRACE_SECONDS` is
killed. Then a short helper child marks the night's DAG run and its unfinished task
instances failed in Airflow's metadata (:func:`after_crash`); for a child that died
on its own without reporting its night, it also sends the run-failure alert.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn

from qudao.constants import SHANGHAI
from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db
from qudao.orchestration.task_logs import capture_task_logs, progress_line

DAG_ID = "channel_nightly"
PROGRESS = "QUDAO-PROGRESS "
RESULT = "QUDAO-RESULT "
#: the child starts a night: {"business_date", "run_id"}
NIGHT = "QUDAO-NIGHT "
#: the after-crash helper's report: {"run_id", "marked"}
MARKED = "QUDAO-MARKED "
#: how long an interrupted child's process group may take to exit before it is killed
GRACE_SECONDS = 10.0


def logical_date_for(business_date: date) -> datetime:
    """The scheduled nightly run for business date D is at 02:00 Shanghai on D + 1."""
    return datetime.combine(business_date + timedelta(days=1), time(2, 0), tzinfo=SHANGHAI)


def run_id_for(business_date: date, started: datetime) -> str:
    """``qudao__2026-11-15__20261202T070405Z``: the night and when ``qudao run`` started (UTC)."""
    return f"qudao__{business_date.isoformat()}__{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def progress(message: str) -> None:
    """Print a progress line that ``qudao run`` shows on the console (and the task's log)."""
    print(PROGRESS + message, flush=True)
    progress_line(message)


@dataclass
class NightResult:
    business_date: date
    state: str  # success | failed
    run_id: str
    failed_tasks: list[str] = field(default_factory=list)
    #: tasks that did not run because an upstream task failed
    not_run: list[str] = field(default_factory=list)
    #: the failed step's outcome as the ledger has it (``qudao.ledger.outcomes.StepOutcome``)
    failure: Any = None

    def why(self) -> list[str]:
        """What failed, from the step's outcome: its line and the first line of its message."""
        if self.failure is None:
            return []
        first = self.failure.message.splitlines()[0] if self.failure.message else ""
        return [self.failure.line()] + ([first] if first and first not in self.failure.line() else [])


def failure_of(run_id: str) -> Any:
    """The run's latest failed step outcome in the ledger, or None (also when it cannot be read)."""
    from qudao.ledger.outcomes import latest_failure
    from qudao.warehouse.connection import connect

    try:
        with connect() as conn:
            return latest_failure(conn, run_id)
    except Exception:  # a summary without the reason beats no summary
        return None


class Interrupted(Exception):
    """``qudao run`` got SIGINT or SIGTERM; :meth:`line` is what the console shows."""

    def __init__(
        self, signum: int, night: date | None = None, marked: bool | None = None, log: Path | None = None
    ):
        super().__init__(signal.Signals(signum).name)
        #: marked: True the run was marked failed, False there was no run yet, None marking failed
        self.signum, self.night, self.marked, self.log = signum, night, marked, log

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        log = f"; log: {self.log}" if self.log else ""
        if self.night is None:
            return f"interrupted ({self.args[0]}) before a night started{log}"
        state = {
            True: "marked failed",
            False: "stopped before its Airflow run was created",
            None: "could not be marked failed (see the log)",
        }[self.marked]
        return f"interrupted ({self.args[0]}): night {self.night} {state}{log}"


class Interruptible:
    """SIGINT / SIGTERM handling of ``qudao run`` (a context manager around the whole command).

    Before a child runs, a signal raises :class:`Interrupted` where the command is, so
    ``with warehouse()`` is left normally. While a child runs, the signal is forwarded
    to the child's process group and :func:`run_nightly` raises once the child is gone.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.child: subprocess.Popen[str] | None = None
        self.signum: int | None = None
        self._killer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interruptible:
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        if self._killer is not None:
            self._killer.cancel()

    def _handle(self, signum: int, frame: object) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if self.child is None:
            if first:
                raise Interrupted(signum)
            return
        if first:
            _signal_group(self.child.pid, signal.SIGTERM)
            self._killer = threading.Timer(GRACE_SECONDS, _signal_group, (self.child.pid, signal.SIGKILL))
            self._killer.daemon = True
            self._killer.start()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@contextmanager
def _child(
    args: list[str], env: dict[str, str], keep_fds: tuple[int, ...]
) -> Iterator[subprocess.Popen[str]]:
    """The runner child in its own process group; nothing of that group outlives the block."""
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        process_group=0,
        pass_fds=keep_fds,
    )
    try:
        yield proc
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        raise
    finally:
        with suppress(ChildProcessError):  # wait without reaping: its pid still names the group
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group (grandchildren)
        proc.wait()


def _header(dates: list[date], run_ids: list[str]) -> str:
    span = str(dates[0]) if len(dates) == 1 else f"{dates[0]} … {dates[-1]}"
    return (
        f"===== {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC qudao run {span} (pid {os.getpid()}):"
        f" run ids {', '.join(run_ids)} =====\n"
    )


def run_nightly(
    landing: str,
    dates: list[date],
    log_path: Path,
    echo: Callable[[str], None] = print,
    *,
    signals: Interruptible | None = None,
    keep_fds: tuple[int, ...] = (),
) -> list[NightResult]:
    """Run the nightly DAG for each date in order; stop at the first failed night.

    Raises :class:`Interrupted` when ``signals`` caught SIGINT / SIGTERM meanwhile;
    ``keep_fds`` stay open in the child (the night lock).
    """
    env = airflow_env()
    ensure_airflow_db(env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    run_ids = [run_id_for(d, started) for d in dates]
    nights = [f"{d.isoformat()}={r}" for d, r in zip(dates, run_ids, strict=True)]
    args = [sys.executable, "-m", "qudao.orchestration.runner", landing, *nights]
    results: list[NightResult] = []
    current: dict[str, Any] | None = None
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(_header(dates, run_ids))
        log.flush()
        if signals is not None and signals.signum is not None:
            raise Interrupted(signals.signum, log=log_path)
        with _child(args, env, keep_fds) as proc:
            if signals is not None:
                signals.child = proc
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                quiet = signals is not None and signals.signum is not None
                if line.startswith(NIGHT):
                    current = json.loads(line[len(NIGHT) :])
                elif PROGRESS in line:
                    if not quiet:
                        echo("  " + line.split(PROGRESS, 1)[1].rstrip())
                elif line.startswith(RESULT):
                    data = json.loads(line[len(RESULT) :])
                    current = None
                    results.append(
                        NightResult(
                            date.fromisoformat(data["business_date"]),
                            data["state"],
                            data["run_id"],
                            data.get("failed_tasks", []),
                            data.get("not_run", []),
                        )
                    )
                    if data["state"] != "success":
                        results[-1].failure = failure_of(data["run_id"])
            log.flush()
        signum = signals.signum if signals is not None else None
        if signum is not None:
            night = date.fromisoformat(current["business_date"]) if current else None
            marked = after_crash(env, current, None, log) if current else False
            raise Interrupted(signum, night, marked, log_path)
        if (
            proc.returncode != 0
            and len(results) < len(dates)
            and (not results or results[-1].state != "failed")
        ):
            missing = dates[len(results)]
            night_info = current or {"business_date": missing.isoformat(), "run_id": run_ids[len(results)]}
            how = f"the runner process died (exit status {proc.returncode})"
            after_crash(env, night_info, how, log)
            results.append(NightResult(missing, "failed", f"{night_info['run_id']} (runner crashed)"))
    return results


def after_crash(
    env: dict[str, str], night: dict[str, Any], alert_reason: str | None, log: Any
) -> bool | None:
    """Mark ``night``'s DAG run failed in Airflow; with ``alert_reason`` also send the run alert.

    Runs in a short child with Airflow's environment (the parent never imports Airflow).
    Returns whether a run was marked, None when the helper failed (its output is in the log).
    """
    args = [sys.executable, "-m", "qudao.orchestration.runner", "--after-crash", json.dumps(night)]
    if alert_reason:
        args.append(alert_reason)
    done = subprocess.run(args, env=env, capture_output=True, text=True, start_new_session=True)
    log.write(done.stdout + done.stderr)
    log.flush()
    reports = [line for line in done.stdout.splitlines() if line.startswith(MARKED)]
    if done.returncode != 0 or not reports:
        return None
    return bool(json.loads(reports[-1][len(MARKED) :]).get("marked"))


# --- in Airflow's process -------------------------------------------------------------------------


def mark_failed(run_id: str) -> bool:
    """Mark the DAG run and its unfinished task instances failed; False if there is no such run.

    Task instances that had started become ``failed``, those that never started
    ``upstream_failed`` (shown as "not run"), like a failed night's summary.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    with create_session() as session:
        dr = session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id).one_or_none()
        if dr is None:
            return False
        for ti in dr.get_task_instances(session=session):
            if ti.state in State.unfinished:
                started = ti.state not in (None, TaskInstanceState.SCHEDULED)
                ti.set_state(
                    TaskInstanceState.FAILED if started else TaskInstanceState.UPSTREAM_FAILED,
                    session=session,
                )
        if dr.state not in State.finished_dr_states:
            dr.set_state(DagRunState.FAILED)
    return True


def _exit_on(signum: int, frame: object = None) -> None:
    print(f"runner: {signal.Signals(signum).name} received, exiting", flush=True)
    os._exit(128 + signum)


def _watch_signals() -> None:
    """Thread of the child: takes SIGTERM / SIGINT while the other threads block them."""
    _exit_on(signal.sigwait({signal.SIGTERM, signal.SIGINT}))


def _exit_at_once_on_signals() -> None:
    """Make SIGTERM / SIGINT end this process at once, whatever Airflow or dbt do meanwhile.

    Airflow's task runner installs its own SIGTERM handler for every task (it only
    calls the operator's ``on_kill``, so the process went on), and something during
    ``dbt build`` unblocks signals in the main thread. So both: the signals are
    blocked and taken by a thread of ours, and where they still reach the main
    thread, our handler runs, as later ``signal.signal`` calls for them are ignored.
    The parent marks the run failed afterwards: the child cannot while a task runs,
    the main thread's metadata session holding SQLite's lock.
    """
    ours = (signal.SIGTERM, signal.SIGINT)
    install = signal.signal
    for s in ours:
        install(s, _exit_on)

    def keep_ours(signum: int, handler: Any) -> Any:
        return signal.getsignal(signum) if signum in ours else install(signum, handler)

    signal.signal = keep_ours  # type: ignore[assignment]
    signal.pthread_sigmask(signal.SIG_BLOCK, set(ours))
    threading.Thread(target=_watch_signals, daemon=True, name="qudao-signals").start()


def _main(landing: str, nights: list[str]) -> int:
    """Child process: load the DAG like ``airflow dags test`` and run it per night."""
    _exit_at_once_on_signals()

    from unittest import mock

    from airflow.models.dagrun import DagRun
    from airflow.utils.cli import get_bagged_dag
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    @providers_configuration_loaded
    def run() -> int:
        with capture_task_logs():  # the UI's Logs tab shows the tasks of qudao run's runs
            return run_nights()

    def run_nights() -> int:
        dag = get_bagged_dag(bundle_names=None, dag_id=DAG_ID)
        for night in nights:
            d, run_id = night.split("=", 1)
            print(NIGHT + json.dumps({"business_date": d, "run_id": run_id}), flush=True)
            progress(f"{d}: starting the nightly run {run_id}")
            now = datetime.now(UTC)
            # dag.test() takes no run id: it names the run after the time; ours names the night.
            with mock.patch.object(
                DagRun, "generate_run_id", staticmethod(lambda run_id=run_id, **_: run_id)
            ):
                dr = dag.test(
                    logical_date=now, run_after=now, run_conf={"business_date": d, "landing": landing}
                )
            state = str(getattr(dr.state, "value", dr.state))
            states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
            result = {
                "business_date": d,
                "state": state,
                "run_id": dr.run_id,
                "failed_tasks": sorted(t for t, s in states.items() if s == "failed"),
                "not_run": sorted(t for t, s in states.items() if s == "upstream_failed"),
            }
            print(RESULT + json.dumps(result), flush=True)
            if state != "success":
                return 1
        return 0

    return run()


def _after_crash_main(night_json: str, alert_reason: str | None) -> int:
    """Helper child: mark the night's run failed; send the run-failure alert when asked."""
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    night = json.loads(night_json)

    @providers_configuration_loaded
    def run() -> int:
        marked = mark_failed(night["run_id"])
        print(MARKED + json.dumps({"run_id": night["run_id"], "marked": marked}), flush=True)
        if alert_reason:
            from qudao.alerts import QudaoAlertNotifier

            dag_run = {
                "dag_id": DAG_ID,
                "run_id": night["run_id"],
                "conf": {"business_date": night["business_date"]},
            }
            QudaoAlertNotifier().notify(
                {
                    "dag": {"dag_id": DAG_ID},
                    "dag_run": dag_run,
                    "run_id": night["run_id"],
                    "reason": alert_reason,
                }
            )
        return 0

    return run()


def _leave(status: int) -> NoReturn:
    """End the child once its nights are reported, without the interpreter's finalisation.

    What a normal exit does first still runs, in its order: threading's shutdown (it
    stops executors, e.g. the process pool OpenLineage's listener sends DAG-run events
    from; without it the atexit handler of multiprocessing waits for that pool's worker
    forever), then the exit handlers (Airflow disposes its metadata engine, logging
    flushes). Then the process ends at once: tearing down the ~15,000 modules Airflow,
    dbt and Great Expectations loaded took the child 12-13 s after its last night
    (measured, 2 busy cores), and it holds nothing that needs it.
    """
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    if sys.argv[1] == "--after-crash":
        sys.exit(_after_crash_main(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
    _leave(_main(sys.argv[1], sys.argv[2:]))
