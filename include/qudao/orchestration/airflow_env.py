"""The environment Airflow runs in when qudao drives it locally.

Airflow's metadata lives in ``.qudao/airflow/`` (SQLite), the DAGs folder is the
checkout's ``dags/``, plugins ``plugins/``. Production (docker-compose) sets its
own ``AIRFLOW__*`` variables and never calls this.

Locally the UI listens on 127.0.0.1 only (:data:`LOCAL_HOST`), ``.qudao/airflow/``
is 0700 and its files (the SQLite metadata, ``airflow.cfg`` with its secret keys,
the generated admin password) 0600 (:func:`secure_airflow_home`). DAGs start paused,
as Airflow's default: opening the UI schedules nothing until a DAG is unpaused
(``qudao run`` needs no unpausing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qudao.config import PROJECT_ROOT, settings

#: The only interface the local Airflow UI (api-server) listens on.
LOCAL_HOST = "127.0.0.1"
#: The local UI's port unless AIRFLOW__API__PORT says otherwise.
LOCAL_UI_PORT = 8080
#: The OpenLineage namespace of qudao's Airflow jobs.
OPENLINEAGE_NAMESPACE = "qudao"
#: The file SimpleAuthManager keeps the generated admin password in (under AIRFLOW_HOME).
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


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
    env.setdefault("AIRFLOW__API__HOST", LOCAL_HOST)
    env.setdefault("AIRFLOW__API__PORT", str(LOCAL_UI_PORT))
    env.setdefault("AIRFLOW__API__WORKERS", "1")  # one user, one laptop
    api = f"http://{env['AIRFLOW__API__HOST']}:{env['AIRFLOW__API__PORT']}"
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{api}/execution/")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    env.setdefault("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
    # OpenLineage (qudao.lineage): the provider stays off until a transport is configured
    # (OPENLINEAGE_URL for HTTP, AIRFLOW__OPENLINEAGE__TRANSPORT for any other)
    env.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", OPENLINEAGE_NAMESPACE)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("QUDAO_HOME", str(cfg.home))
    # a local run retries a failed task after seconds, not the production five minutes
    env.setdefault("QUDAO_RETRY_DELAY_SECONDS", "5")
    # `airflow standalone` and friends start `airflow …` by name: this venv's first, from any shell
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, path]) if path else bin_dir
    return env


def secure_airflow_home(env: dict[str, str]) -> list[Path]:
    """Make AIRFLOW_HOME 0700 and the secrets in it 0600; returns the files changed."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    changed = []
    for path in [home / "airflow.cfg", home / PASSWORDS_FILE, *home.glob("airflow.db*")]:
        if path.is_file() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            changed.append(path)
    return changed


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata database (idempotent, ~10 s the first time)."""
    home = env["AIRFLOW_HOME"]
    secure_airflow_home(env)
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
        umask=0o077,
    )
    with open(marker, "w") as f:
        f.write(conn)
