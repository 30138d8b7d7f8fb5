"""Where things live and which settings come from the environment.

Every setting has an environment variable (listed in ``.env.example``) and a
default that works in a fresh checkout with nothing else installed.

The project directory (``dbt_project/``, ``expectations/``, ``dags/``, ``plugins/``) is, in
this order (docs/deployment.md says why):

1. ``QUDAO_PROJECT_DIR``, when set: a folder holding ``dbt_project/dbt_project.yml``;
2. the copy a wheel ships inside the package (``qudao/_project/``, written by ``setup.py``);
3. the checkout an editable install runs from (``include/qudao/`` → two levels up).

Local state (``.qudao/``) and the default landing zone sit in the project directory in cases 1
and 3; beside the shipped copy (inside ``site-packages``) they would be lost on every upgrade,
so there they default to ``~/.qudao/`` and its ``landing/``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qudao.constants import BUSINESS_TZ_NAME

PROJECT_DIR_ENV = "QUDAO_PROJECT_DIR"
_PACKAGE = Path(__file__).resolve().parent
#: the project files a wheel ships inside the package (absent in an editable install)
SHIPPED_PROJECT = _PACKAGE / "_project"
#: the checkout an editable install runs from
CHECKOUT = _PACKAGE.parents[1]


def _project_dir() -> Path:
    value = os.environ.get(PROJECT_DIR_ENV)
    if value:
        path = Path(value).expanduser().resolve()
        if not (path / "dbt_project" / "dbt_project.yml").is_file():
            # a mistake in the environment: one line, no traceback, wherever qudao is imported
            raise SystemExit(f"{PROJECT_DIR_ENV}={value}: no dbt_project/dbt_project.yml in {path}")
        return path
    if (SHIPPED_PROJECT / "dbt_project" / "dbt_project.yml").is_file():
        return SHIPPED_PROJECT
    return CHECKOUT


#: The project directory, resolved once per process (see the module docstring).
PROJECT_ROOT = _project_dir()
#: the default local state: never inside an installed package
_INSTALLED = PROJECT_ROOT == SHIPPED_PROJECT


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    home: Path  # .qudao/: embedded warehouse, Airflow metadata, logs
    landing: str  # landing zone: local folder or object-storage URL
    warehouse_url: str | None  # None: use the embedded server
    warehouse_port: int  # TCP port of `qudao warehouse start`
    dbt_project_dir: Path
    reject_threshold: float  # share of a file's rows; above it the gate fails
    timezone: str = BUSINESS_TZ_NAME
    #: follow symbolic links inside the landing zone (never out of it); off: refuse every link
    landing_allow_symlinks: bool = False
    #: most bytes a compressed delivery (XLSX, .gz) may expand to
    max_expanded_bytes: int = 1 << 30
    #: most a compressed delivery may expand relative to its size (decompression bombs)
    max_expansion_ratio: float = 100.0

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def dbt_profiles_dir(self) -> Path:
        return self.dbt_project_dir

    @property
    def quarantine_dir(self) -> str:
        return self.landing.rstrip("/") + "/_quarantine"


def settings() -> Settings:
    """Read the settings from the environment (cheap; call it where needed)."""
    home = _env_path("QUDAO_HOME", Path.home() / ".qudao" if _INSTALLED else PROJECT_ROOT / ".qudao")
    landing = home / "landing" if _INSTALLED else PROJECT_ROOT / "data" / "landing"
    return Settings(
        home=home,
        landing=os.environ.get("QUDAO_LANDING", str(landing)),
        warehouse_url=os.environ.get("QUDAO_WAREHOUSE_URL") or None,
        warehouse_port=int(os.environ.get("QUDAO_WAREHOUSE_PORT", "55432")),
        dbt_project_dir=_env_path("QUDAO_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project"),
        reject_threshold=float(os.environ.get("QUDAO_REJECT_THRESHOLD", "0.01")),
        landing_allow_symlinks=_env_flag("QUDAO_LANDING_ALLOW_SYMLINKS"),
        max_expanded_bytes=int(float(os.environ.get("QUDAO_MAX_EXPANDED_MB", "1024")) * (1 << 20)),
        max_expansion_ratio=float(os.environ.get("QUDAO_MAX_EXPANSION_RATIO", "100")),
    )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set while inside; what was there before comes back after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
