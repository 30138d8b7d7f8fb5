"""Which night a DAG run processes — import-light, used by the DAG file's templates."""

from __future__ import annotations

import os
from typing import Any

from qudao.business_day import business_date_of

__all__ = ["business_date_of", "env_seconds", "landing_of"]


def landing_of(conf: dict[str, Any] | None) -> str:
    """``conf['landing']`` if given, else ``QUDAO_LANDING``, else the checkout's ``data/landing``."""
    if conf and conf.get("landing"):
        return str(conf["landing"])
    from qudao.config import settings

    return settings().landing


def env_seconds(name: str, default: float) -> float:
    """A duration setting in seconds from the environment."""
    return float(os.environ.get(name, default))
