"""One night at a time: the lock ``qudao run`` holds while it runs nights.

Two locks, both released by the operating system or the server when their holder
dies, so a crash never leaves a stale lock behind:

* an ``flock`` on ``<QUDAO_HOME>/locks/<dag id>.lock``, which also holds who runs
  what (pid, dates, start time) for the refusal message. The runner child inherits
  the open file, so the lock lasts until parent and child are both gone;
* with ``QUDAO_WAREHOUSE_URL`` (a shared server that other machines may use), also a
  PostgreSQL session advisory lock on that server, held by one idle connection whose
  ``application_name`` says who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

#: what ``application_name`` of the advisory lock's connection starts with
APPLICATION = "qudao night lock"


class NightRunning(RuntimeError):
    """Another ``qudao run`` holds the night lock; the message says who."""


@dataclass
class NightLock:
    """A held night lock; ``fd`` is the lock file's descriptor (pass it to the runner child)."""

    fd: int
    dates: list[date]


def _dates_text(dates: list[str]) -> str:
    if len(dates) == 1:
        return f"night {dates[0]} is"
    return f"nights {dates[0]} … {dates[-1]} are"


def _holder_message(holder: dict[str, Any]) -> str:
    where = f" on {holder['host']}" if holder.get("host") and holder["host"] != socket.gethostname() else ""
    return (
        f"{_dates_text(holder.get('dates') or ['?'])} already running "
        f"(pid {holder.get('pid', '?')}{where}, started {holder.get('started', '?')})"
    )


def _refuse_file(f: IO[str]) -> NightRunning:
    f.seek(0)
    try:
        holder = json.loads(f.read() or "{}")
    except ValueError:
        holder = {}
    return NightRunning(_holder_message(holder))


def _advisory_key(dag_id: str) -> str:
    return f"qudao.night.{dag_id}"


@contextlib.contextmanager
def _advisory_lock(url: str, dag_id: str, holder: dict[str, Any]) -> Iterator[None]:
    """Hold ``pg_try_advisory_lock`` on the shared warehouse for the duration."""
    import psycopg

    dates = holder["dates"]
    name = f"{APPLICATION} {holder['pid']} {dates[0]} {dates[-1]}"  # within the 63 characters allowed
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name=name)
    try:
        key = _advisory_key(dag_id)
        (got,) = conn.execute("select pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not got:
            row = conn.execute(
                "select a.application_name, coalesce(a.client_addr::text, 'local socket'), a.backend_start"
                " from pg_locks l join pg_stat_activity a using (pid)"
                " where l.locktype = 'advisory' and l.granted and l.objid = hashtext(%s)::oid"
                " and l.database = (select oid from pg_database where datname = current_database())",
                (key,),
            ).fetchone()
            other: dict[str, Any] = {}
            if row:
                other = {"host": row[1], "started": f"{row[2]:%Y-%m-%d %H:%M:%S %Z}"}
                words = row[0].removeprefix(APPLICATION).split()
                if row[0].startswith(APPLICATION) and len(words) == 3:
                    other.update(
                        pid=words[0], dates=[words[1], words[2]] if words[1] != words[2] else [words[1]]
                    )
            raise NightRunning(_holder_message(other) + " according to the warehouse server")
        yield
    finally:
        conn.close()  # ends the session: the advisory lock goes with it


@contextlib.contextmanager
def night_lock(home: Path, dag_id: str, dates: list[date], warehouse_url: str | None) -> Iterator[NightLock]:
    """Take the night lock of ``dag_id`` or raise :class:`NightRunning` at once (never waits)."""
    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "dates": [d.isoformat() for d in dates],
        "started": f"{datetime.now():%Y-%m-%d %H:%M:%S}",
    }
    with open(folder / f"{dag_id}.lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refuse_file(f) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(holder))
            f.flush()
            with _advisory_lock(warehouse_url, dag_id, holder) if warehouse_url else contextlib.nullcontext():
                yield NightLock(fd=f.fileno(), dates=dates)
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
