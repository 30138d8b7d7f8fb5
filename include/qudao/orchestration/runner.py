"""Run the nightly DAG through Airflow for one or more business dates.

``qudao run`` calls :func:`run_nightly`, which starts one child process (this
module's ``__main__``) that loads the DAG the way ``airflow dags test`` does and
runs it once per business date, in order. Airflow's own start-up (about 20 s)
is paid once per range, not per night. The child's full log goes to a file;
lines starting with :data:`PROGRESS` are echoed so that long work shows progress.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db

DAG_ID = "channel_nightly"
PROGRESS = "QUDAO-PROGRESS "
RESULT = "QUDAO-RESULT "
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: the last line of a Python traceback, e.g. ``airflow.sdk.exceptions.AirflowFailException: …``
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Exception|Error|Failed|Refused|Timeout)\b: ")


def logical_date_for(business_date: date) -> datetime:
    """The nightly run for business date D is scheduled at 02:00 Shanghai on D + 1."""
    return datetime.combine(business_date + timedelta(days=1), time(2, 0), tzinfo=SHANGHAI)


def progress(message: str) -> None:
    """Print a progress line that ``qudao run`` shows on the console."""
    print(PROGRESS + message, flush=True)


@dataclass
class NightResult:
    business_date: date
    state: str  # success | failed
    run_id: str
    failed_tasks: list[str] = field(default_factory=list)
    #: tasks that did not run because an upstream task failed
    not_run: list[str] = field(default_factory=list)


def run_nightly(
    landing: str,
    dates: list[date],
    log_path: Path,
    echo: Callable[[str], None] = print,
) -> list[NightResult]:
    """Run the nightly DAG for each date in order; stop at the first failed night."""
    env = airflow_env()
    ensure_airflow_db(env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "qudao.orchestration.runner", landing, *[d.isoformat() for d in dates]]
    results: list[NightResult] = []
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if PROGRESS in line:
                echo("  " + line.split(PROGRESS, 1)[1].rstrip())
            elif _EXCEPTION.match(line):  # the last line of a task's traceback: why it failed
                echo("  ! " + line.rstrip())
            elif line.startswith(RESULT):
                data = json.loads(line[len(RESULT) :])
                results.append(
                    NightResult(
                        date.fromisoformat(data["business_date"]),
                        data["state"],
                        data["run_id"],
                        data.get("failed_tasks", []),
                        data.get("not_run", []),
                    )
                )
        proc.wait()
    if proc.returncode != 0 and len(results) < len(dates) and (not results or results[-1].state != "failed"):
        missing = dates[len(results)]
        results.append(NightResult(missing, "failed", "(runner crashed)"))
    return results


def _main(landing: str, dates: list[str]) -> int:
    """Child process: load the DAG like ``airflow dags test`` and run it per date."""
    from airflow.utils.cli import get_bagged_dag
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    @providers_configuration_loaded
    def run() -> int:
        dag = get_bagged_dag(bundle_names=None, dag_id=DAG_ID)
        for d in dates:
            business_date = date.fromisoformat(d)
            progress(f"{d}: starting the nightly run")
            dr = dag.test(
                logical_date=logical_date_for(business_date),
                run_conf={"business_date": d, "landing": landing},
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


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2:]))
