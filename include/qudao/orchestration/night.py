"""Which night a DAG run processes — import-light, used by the DAG file's templates."""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

from qudao.constants import SHANGHAI


def business_date_of(conf: dict[str, Any] | None, logical_date: Any) -> date:
    """``conf['business_date']`` if given, else the Shanghai day before the run's logical date."""
    if conf and conf.get("business_date"):
        return date.fromisoformat(str(conf["business_date"]))
    return logical_date.astimezone(SHANGHAI).date() - timedelta(days=1)


def landing_of(conf: dict[str, Any] | None) -> str:
    """``conf['landing']`` if given, else ``QUDAO_LANDING``, else the checkout's ``data/landing``."""
    if conf and conf.get("landing"):
        return str(conf["landing"])
    from qudao.config import settings

    return settings().landing


def env_seconds(name: str, default: float) -> float:
    """A duration setting in seconds from the environment."""
    return float(os.environ.get(name, default))
