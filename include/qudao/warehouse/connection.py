"""Which PostgreSQL the platform talks to, and connections to it.

``QUDAO_WAREHOUSE_URL`` names a server; without it the embedded server under
``.qudao/`` is used, started on demand and shared: each command holds a lease on
it, and the last one to leave stops it (unless ``qudao warehouse start`` keeps it
running).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse, urlunparse

import psycopg

from qudao.config import settings
from qudao.warehouse import embedded


@contextlib.contextmanager
def warehouse() -> Iterator[str]:
    """Yield the warehouse URL for the duration of a command.

    Sets ``QUDAO_WAREHOUSE_URL`` meanwhile, so that Airflow tasks and dbt started
    from this process reach the same server.
    """
    cfg = settings()
    if cfg.warehouse_url:
        yield cfg.warehouse_url
        return
    state, lease = embedded.acquire(cfg.home, port=cfg.warehouse_port)
    os.environ["QUDAO_WAREHOUSE_URL"] = state.url()
    try:
        yield state.url()
    finally:
        os.environ.pop("QUDAO_WAREHOUSE_URL", None)
        embedded.release(cfg.home, lease)


def current_url() -> str:
    """The warehouse URL; starts the embedded server if needed, left running (persistent)."""
    cfg = settings()
    if cfg.warehouse_url:
        return cfg.warehouse_url
    state = embedded.running_state(cfg.home) or embedded.start(
        cfg.home, port=cfg.warehouse_port, persistent=True
    )
    return state.url()


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """A psycopg 3 connection to the warehouse."""
    return psycopg.connect(url or current_url(), **kwargs)  # type: ignore[arg-type]


def sqlalchemy_url(url: str | None = None) -> str:
    """The same server as a SQLAlchemy URL (psycopg 3 driver)."""
    url = url or current_url()
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def dbt_target(url: str | None = None) -> dict[str, str]:
    """Connection fields for dbt's profile (read from ``QUDAO_DBT_*`` env vars)."""
    parsed = urlparse(url or current_url())
    query = parse_qs(parsed.query)
    host = parsed.hostname or query.get("host", ["localhost"])[0]
    port = parsed.port or int(query.get("port", ["5432"])[0])
    return {
        "QUDAO_DBT_HOST": host,
        "QUDAO_DBT_PORT": str(port),
        "QUDAO_DBT_USER": parsed.username or "postgres",
        "QUDAO_DBT_PASSWORD": parsed.password or "",
        "QUDAO_DBT_DBNAME": (parsed.path or "/postgres").lstrip("/") or "postgres",
    }


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{database}"))
