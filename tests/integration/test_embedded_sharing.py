"""The embedded server shared by concurrent commands: the last one to leave stops it.

Real processes: each command is a Python child entering ``warehouse()`` in a
temporary ``QUDAO_HOME`` of this module (never the session's server).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse import embedded

pytestmark = pytest.mark.integration

#: A long command: enters warehouse(), holds a connection, uses it again after a line on stdin.
HOLDER = """
import sys
from qudao.warehouse.connection import connect, warehouse
with warehouse() as url, connect(url) as conn:
    conn.execute("select 1")
    print("ready", flush=True)
    sys.stdin.readline()
    print(conn.execute("select 41 + 1").fetchone()[0], flush=True)
"""
#: A short command: enters and leaves.
ENTER_LEAVE = "from qudao.warehouse.connection import warehouse\nwith warehouse() as url:\n    print(url)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("shared-home")
    yield home
    embedded.stop(home)


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "QUDAO_WAREHOUSE_URL"}
    env.update(QUDAO_HOME=str(home), QUDAO_WAREHOUSE_PORT=str(_free_port()))
    assert embedded.running_state(home) is None  # each test starts from a stopped server
    return env


def _holder(env: dict[str, str]) -> subprocess.Popen[str]:
    a = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, cwd=PROJECT_ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert a.stdout is not None and a.stdout.readline() == "ready\n"
    return a


def _enter_and_leave(env: dict[str, str]) -> None:
    b = subprocess.run([sys.executable, "-c", ENTER_LEAVE], env=env, cwd=PROJECT_ROOT, capture_output=True)
    assert b.returncode == 0, b.stderr.decode()


def test_a_command_leaving_never_stops_the_server_under_another(home: Path, env: dict[str, str]) -> None:
    a = _holder(env)  # A starts the server
    assert embedded.users(home) == [a.pid]
    _enter_and_leave(env)  # C comes and goes while A works
    b = _holder(env)  # B joins
    out, _ = a.communicate("go on\n", timeout=60)
    assert (a.returncode, out) == (0, "42\n")  # A's connection survived C
    assert embedded.running_state(home) is not None  # A, who started it, left: B still uses it
    out, _ = b.communicate("go on\n", timeout=60)
    assert (b.returncode, out) == (0, "42\n")  # B's connection survived A
    assert embedded.running_state(home) is None  # B was the last: it stopped the server
    assert embedded.users(home) == []


def test_a_killed_commands_lease_is_ignored(home: Path, env: dict[str, str]) -> None:
    a = _holder(env)
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    assert embedded.running_state(home) is not None  # nobody stopped it
    assert len(list((home / "leases").glob("*.lease"))) == 1  # the dead command's lease is left behind
    _enter_and_leave(env)
    assert embedded.running_state(home) is None  # the dead lease did not keep it running
    assert list((home / "leases").glob("*.lease")) == []


def test_warehouse_start_keeps_it_running_and_stop_waits_for_the_last_user(
    home: Path, env: dict[str, str]
) -> None:
    qudao = [str(Path(sys.executable).parent / "qudao")]
    started = subprocess.run([*qudao, "warehouse", "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    _enter_and_leave(env)
    assert embedded.running_state(home) is not None  # persistent: commands leave it running
    a = _holder(env)
    stop = subprocess.run([*qudao, "warehouse", "stop"], env=env, capture_output=True, text=True)
    assert stop.stdout == (
        f"The embedded warehouse is in use (pid {a.pid}): it stops when the last of them ends.\n"
    )
    assert embedded.running_state(home) is not None
    out, _ = a.communicate("go on\n", timeout=60)
    assert (a.returncode, out) == (0, "42\n")
    assert embedded.running_state(home) is None
