"""The embedded warehouse locked down: passwords over TCP, a private socket, logins that need theirs.

Each test runs its own embedded server in a temporary ``QUDAO_HOME`` (never the
session's). Another OS user is played by ``nobody`` with ``runuser`` and the
server's own ``psql`` when the tests run as root; otherwise the client is this
process with no password anywhere (no PGPASSWORD, no passfile).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from qudao.warehouse import embedded

pytestmark = pytest.mark.integration

RUNUSER = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
AS_ROOT = os.geteuid() == 0 and RUNUSER is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_client_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-passfile"))


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("secure-home")
    yield home
    embedded.stop(home)


@pytest.fixture(scope="module")
def tcp_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One server listening on TCP for the tests that only look at it."""
    home = tmp_path_factory.mktemp("secure-tcp-home")
    embedded.start(home, port=_free_port(), tcp=True)
    yield home
    embedded.stop(home)


@pytest.fixture
def tcp_server(tcp_home: Path) -> embedded.ServerState:
    state = embedded.running_state(tcp_home)
    assert state is not None
    return state


def _refused_over_tcp(state: embedded.ServerState, user: str, password: str | None) -> str:
    """Connect as ``user`` (no password when None); the server's reason for refusing, '' if let in."""
    url = f"postgresql://{user}@127.0.0.1:{state.port}/qudao"
    try:
        with psycopg.connect(url, password=password, connect_timeout=10) as c:
            c.execute("select 1")
    except psycopg.OperationalError as e:
        return str(e)
    return ""


def _as_nobody(*psql_args: str) -> subprocess.CompletedProcess[str]:
    psql = str(embedded._bin_dir() / "psql")
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(
        [str(RUNUSER), "-u", "nobody", "--", psql, "-X", "-At", *psql_args, "-c", "select current_user"],
        env=env, capture_output=True, text=True, cwd="/",
    )  # fmt: skip


def test_the_socket_directory_and_the_password_file_are_private(
    tcp_home: Path, tcp_server: embedded.ServerState
) -> None:
    socket_dir = Path(tcp_server.socket_dir)
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    server_user = pwd.getpwnam("pgserver").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert socket_dir.stat().st_uid == server_user
    secret = embedded.password_file(tcp_home)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() == tcp_server.password and len(tcp_server.password) >= 32
    assert tcp_server.password not in (tcp_home / "warehouse.json").read_text()


@pytest.mark.usefixtures("no_client_password")
def test_tcp_needs_the_superusers_password(tcp_server: embedded.ServerState) -> None:
    assert "no password supplied" in _refused_over_tcp(tcp_server, embedded.SUPERUSER, None)
    assert "password authentication failed" in _refused_over_tcp(tcp_server, embedded.SUPERUSER, "guess")
    assert _refused_over_tcp(tcp_server, embedded.SUPERUSER, tcp_server.password) == ""
    with psycopg.connect(tcp_server.url()) as c:  # the URL `qudao warehouse url` prints works
        assert c.execute("select current_user").fetchone() == (embedded.SUPERUSER,)


@pytest.mark.skipif(not AS_ROOT, reason="needs root to run a client as another OS user")
def test_another_os_user_reaches_neither_the_socket_nor_tcp_without_the_password(
    tcp_server: embedded.ServerState,
) -> None:
    over_socket = _as_nobody(
        "-h", tcp_server.socket_dir, "-p", str(tcp_server.port), "-U", "postgres", "qudao"
    )
    assert over_socket.returncode != 0 and "Permission denied" in over_socket.stderr
    over_tcp = _as_nobody("-w", "-h", "127.0.0.1", "-p", str(tcp_server.port), "-U", "postgres", "qudao")
    assert over_tcp.returncode != 0 and "no password supplied" in over_tcp.stderr
    with_password = _as_nobody(tcp_server.url())
    assert (with_password.returncode, with_password.stdout) == (0, "postgres\n"), with_password.stderr


def _start_like_the_previous_release(home: Path, port: int) -> None:
    """What the release before this one left: trust everywhere, a 0777 socket dir, no password."""
    datadir = home / "warehouse"
    embedded._initdb(datadir)
    hba = datadir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n")
    socket_dir = embedded._socket_dir(home)
    socket_dir.mkdir(parents=True, exist_ok=True)
    embedded._give_to_system_user(socket_dir)
    socket_dir.chmod(0o777)
    options = f"-h '127.0.0.1' -k '{socket_dir}' -p {port}"
    log = str(datadir / "server.log")
    embedded._pg("pg_ctl", "-w", "-t", "60", "-o", options, "-l", log, "-D", str(datadir), "start")
    state = {"socket_dir": str(socket_dir), "port": port, "tcp": True, "persistent": True}
    (home / "warehouse.json").write_text(json.dumps(state))
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as c:
        c.execute("create database qudao")


@pytest.mark.usefixtures("no_client_password")
def test_a_warehouse_of_the_previous_release_is_locked_down_on_start(home: Path) -> None:
    port = _free_port()
    _start_like_the_previous_release(home, port)
    old = embedded.running_state(home)
    assert old is not None and _refused_over_tcp(old, embedded.SUPERUSER, None) == ""  # the hole
    state = embedded.start(home, port=port, tcp=True)  # still running: upgraded in place
    assert "no password supplied" in _refused_over_tcp(state, embedded.SUPERUSER, None)
    assert _refused_over_tcp(state, embedded.SUPERUSER, state.password) == ""
    assert stat.S_IMODE(Path(state.socket_dir).stat().st_mode) == 0o700
    assert (home / "warehouse" / "pg_hba.conf").read_text() == embedded.HBA_CONF
    embedded.stop(home)
    again = embedded.start(home, port=port, tcp=True)  # and after a restart
    assert [again.password] == [state.password]  # the same password after a restart
    assert "no password supplied" in _refused_over_tcp(again, embedded.SUPERUSER, None)


def _qudao(home: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QUDAO_WAREHOUSE_URL"}
    env.update(QUDAO_HOME=str(home), QUDAO_WAREHOUSE_PORT=str(port))
    qudao = str(Path(sys.executable).parent / "qudao")
    return subprocess.run([qudao, *args], env=env, capture_output=True, text=True)


@pytest.mark.usefixtures("no_client_password")
def test_login_create_prints_a_url_that_reads_marts_only_with_its_password(home: Path) -> None:
    port = _free_port()
    created = _qudao(home, port, "warehouse", "login", "create", "dash", "--role", "bi_reader")
    assert created.returncode == 0, created.stderr
    urls = [line.strip() for line in created.stdout.splitlines() if line.strip().startswith("postgresql://")]
    assert len(urls) == 1 and urls[0].startswith("postgresql://dash:")
    password = urls[0].removeprefix("postgresql://dash:").split("@")[0]
    assert urls[0] == f"postgresql://dash:{password}@127.0.0.1:{port}/qudao" and len(password) == 32
    state = embedded.running_state(home)
    assert state is not None and state.tcp and state.persistent  # TCP started for it, left running
    with psycopg.connect(state.url(), autocommit=True) as admin:
        admin.execute("create table marts.mart_x as select 1 as k")
    with psycopg.connect(urls[0], autocommit=True) as dash:
        assert dash.execute("select current_user, k from marts.mart_x").fetchall() == [("dash", 1)]
        for statement in ("insert into marts.mart_x values (2)", "select * from ops.run_log"):
            with pytest.raises(errors.InsufficientPrivilege):
                dash.execute(statement)
    assert "no password supplied" in _refused_over_tcp(state, "dash", None)
    assert "password authentication failed" in _refused_over_tcp(state, "dash", "guess")
    again = _qudao(home, port, "warehouse", "login", "create", "dash", "--role", "analyst")
    assert again.returncode == 1 and "dash exists" in again.stderr
    dropped = _qudao(home, port, "warehouse", "login", "drop", "dash")
    assert (dropped.returncode, dropped.stdout) == (0, "Login dash dropped.\n")
    assert "password authentication failed" in _refused_over_tcp(state, "dash", password)
