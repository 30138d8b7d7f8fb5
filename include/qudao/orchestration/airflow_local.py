"""Airflow processes qudao starts on this machine, and how they are stopped: whole.

``qudao airflow standalone`` (``make ui``) runs the components Airflow's own
``standalone`` runs (api-server, scheduler, dag-processor, triggerer), but with
the worker log servers off (``--skip-serve-logs``: ``airflow standalone`` has no
switch for them and they listen on every interface; locally the UI reads task
logs from the files) and the api-server on 127.0.0.1 (:func:`airflow_env`).
Any other ``qudao airflow …`` runs that one command.

Each child starts in a session of its own, with umask 077 (Airflow's metadata,
its generated admin password and ``airflow.cfg`` with its secret keys are for
this user only). SIGINT or SIGTERM of qudao is forwarded as SIGTERM to every
child's process group and to every descendant recorded at that moment (task
processes make groups of their own); whatever still runs after
:data:`STOP_GRACE_SECONDS` is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import psutil

#: How long components get to stop after SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 30.0

#: What ``qudao airflow standalone`` runs: component name -> airflow arguments.
STANDALONE_COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _airflow(args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", *args], env=dict(env), start_new_session=True, umask=0o077
    )


def _descendants(children: Sequence[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for child in children:
        try:
            proc = psutil.Process(child.pid)
            found += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


def stop_all(children: Sequence[subprocess.Popen[bytes]], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the children's process groups and every descendant; SIGKILL what outlives ``grace``."""
    tree = _descendants(children)
    for child in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGTERM)
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for proc in alive + [p for p in _descendants(children) if p not in tree]:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    for child in children:
        child.poll()


def supervise(commands: Mapping[str, Sequence[str]], env: Mapping[str, str]) -> int:
    """Run airflow ``commands`` (name -> arguments) until one ends or qudao is told to stop.

    Returns the exit status of the command that ended first (the others are stopped
    then), or 128 + the signal's number when stopped by SIGINT/SIGTERM.
    """
    handlers = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in commands.items():
            children[name] = _airflow(args, env)
        while True:
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    if len(children) > 1:
                        print(f"qudao airflow: {name} exited ({code}); stopping the others", file=sys.stderr)
                    return code
            time.sleep(0.5)
    except _Stop as stop:
        print(f"qudao airflow: {stop} received, stopping {', '.join(children)}", file=sys.stderr)
        return 128 + stop.signum
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave orphans
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop_all(list(children.values()))
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
