"""Shared fixtures: a real PostgreSQL for every test that needs one.

Without ``QUDAO_WAREHOUSE_URL`` the session starts its own embedded server in a
temporary ``QUDAO_HOME`` (never the checkout's ``.qudao``); with it, tests use that
server. Each test asking for ``db_url`` gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest

from qudao.warehouse import embedded
from qudao.warehouse.connection import with_database
from qudao.warehouse.schema import ensure_schema


def _free_port() -> int:
    """A TCP port nobody listens on now (the server's socket file is named after it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server for this test session (any database on it)."""
    configured = os.environ.get("QUDAO_WAREHOUSE_URL")
    if configured:
        yield configured
        return
    home = tmp_path_factory.mktemp("qudao-home")
    state = embedded.start(Path(home), port=_free_port())
    try:
        yield state.url()
    finally:
        embedded.stop(Path(home))


@contextmanager
def fresh_warehouse(server_url: str) -> Iterator[str]:
    """A new database on the server with the platform schemas created, dropped afterwards."""
    name = f"qudao_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
            )
            admin.execute(f'drop database if exists "{name}"')


@pytest.fixture
def db_url(server_url: str) -> Iterator[str]:
    """A fresh database with the platform schemas (``raw``, ``ops``, …) created."""
    with fresh_warehouse(server_url) as url:
        yield url


@pytest.fixture
def new_warehouse(server_url: str) -> Callable[[], AbstractContextManager[str]]:
    """Opens further fresh warehouses (``with new_warehouse() as url``) beside ``db_url``."""
    return lambda: fresh_warehouse(server_url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection to ``db_url``."""
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c
