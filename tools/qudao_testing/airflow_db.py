"""Read Airflow's SQLite metadata from a test without holding it open.

``with sqlite3.connect(...)`` commits but does not close. With such a connection left
open in the test process, headless Chromium waited every time until its timeout on the
Airflow UI of an api-server a later test started on the same file (CI of 2026-12-03);
opened read-only and closed at once, it does not.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def airflow_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of ``sql`` on Airflow's metadata database ``db``, read-only."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(sql, params).fetchall()
