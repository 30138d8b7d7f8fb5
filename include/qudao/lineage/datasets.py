"""Names of the datasets qudao reads and writes, as Airflow asset URIs.

Tables are ``postgres://host:port/database/schema/table`` (the postgres provider's asset
URIs, which OpenLineage names ``database.schema.table`` in namespace ``postgres://host:port``,
as its dbt integration names dbt's relations); landing files are ``file://`` URIs.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

#: the host name of a server reached through a Unix socket (the embedded warehouse)
SOCKET_HOST = "localhost"


def authority(url: str) -> tuple[str, int, str]:
    """(host, port, database) of a warehouse URL; a socket directory counts as ``localhost``."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    host = parsed.hostname or query.get("host", [SOCKET_HOST])[0]
    if host.startswith("/"):
        host = SOCKET_HOST
    port = parsed.port or int(query.get("port", ["5432"])[0])
    database = (parsed.path or "/postgres").lstrip("/") or "postgres"
    return host, port, database


def namespace(url: str) -> str:
    """The OpenLineage namespace of the warehouse's datasets."""
    host, port, _ = authority(url)
    return f"postgres://{host}:{port}"


def table_uri(url: str, schema: str, table: str) -> str:
    """The asset URI of ``schema.table`` in the warehouse."""
    host, port, database = authority(url)
    return f"postgres://{host}:{port}/{database}/{schema}/{table}"


def file_uri(path: str | Path) -> str:
    """The asset URI of a landing file."""
    return Path(path).resolve().as_uri()
