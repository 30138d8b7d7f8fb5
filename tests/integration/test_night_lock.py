"""The night lock: a second holder is refused at once, by the lock file and by the shared server.

Real processes: the holder is a child Python process; the refused one is this test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from qudao.orchestration.night_lock import NightRunning, night_lock

NIGHT = date(2026, 11, 15)


@contextmanager
def holder(home: Path, url: str | None) -> Iterator[subprocess.Popen[str]]:
    """A process holding the night lock until its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from datetime import date
        from pathlib import Path
        from qudao.orchestration.night_lock import night_lock
        with night_lock(Path({str(home)!r}), "channel_nightly", [date(2026, 11, 15)], {url!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def test_the_lock_file_refuses_a_second_run_and_dies_with_its_holder(tmp_path: Path) -> None:
    with holder(tmp_path, None) as proc:
        with pytest.raises(NightRunning) as refused, night_lock(tmp_path, "channel_nightly", [NIGHT], None):
            pytest.fail("a second holder got the lock")
        assert str(refused.value).startswith(f"night {NIGHT} is already running (pid {proc.pid}, started ")
        with night_lock(tmp_path, "channel_publish_deadline", [NIGHT], None):
            pass  # another DAG's nights are not serialised with these
    with night_lock(tmp_path, "channel_nightly", [NIGHT, date(2026, 11, 16)], None):
        pass  # the holder is gone, its lock with it


def test_a_shared_warehouse_refuses_a_run_from_another_machine(tmp_path: Path, db_url: str) -> None:
    with holder(tmp_path / "machine-a", db_url) as proc:
        second = night_lock(tmp_path / "machine-b", "channel_nightly", [NIGHT], db_url)
        with pytest.raises(NightRunning) as refused, second:
            pytest.fail("a second machine got the lock")
        message = str(refused.value)
        assert message.startswith(f"night {NIGHT} is already running (pid {proc.pid} on ")
        assert message.endswith(" according to the warehouse server")
    with night_lock(tmp_path / "machine-b", "channel_nightly", [NIGHT], db_url):
        pass
