"""The environment Airflow runs in when qudao drives it locally.

Airflow's metadata lives in ``.qudao/airflow/`` (SQLite), the DAGs folder is the
checkout's ``dags/``, plugins ``plugins/``. Production (docker-compose) sets its
own ``AIRFLOW__*`` variables and never calls this.
"""

from __future__ import annotations

import os
import subprocess
import sys

from qudao.config import PROJECT_ROOT, settings


def airflow_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for an Airflow process driven by qudao."""
    cfg = settings()
    env = dict(os.environ if base is None else base)
    home = cfg.airflow_home
    env.setdefault("AIRFLOW_HOME", str(home))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__DEFAULT_TIMEZONE", cfg.timezone)
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    env.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(home / "logs"))
    env.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "120")
    env.setdefault("AIRFLOW__API__EXPOSE_CONFIG", "False")
    env.setdefault("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("QUDAO_HOME", str(cfg.home))
    # a local run retries a failed task after seconds, not the production five minutes
    env.setdefault("QUDAO_RETRY_DELAY_SECONDS", "5")
    return env


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata database (idempotent, ~10 s the first time)."""
    home = env["AIRFLOW_HOME"]
    os.makedirs(home, exist_ok=True)
    marker = os.path.join(home, ".migrated")
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == conn:
                return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with open(marker, "w") as f:
        f.write(conn)
