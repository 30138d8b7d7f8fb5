"""A night that changed nothing costs nothing (issue 11): ``qudao run`` skips it with one line.

Real ``qudao run`` processes, real Airflow, the embedded PostgreSQL of a temporary
``QUDAO_HOME``. Two small nights are run, then run again (both skipped, no new Airflow
run), then the second night's orders are delivered again with other bytes (the first
is skipped, the second runs), then ``--force`` rebuilds the first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from qudao.config import PROJECT_ROOT
from qudao.warehouse import embedded
from qudao_testing.airflow_db import airflow_rows

pytestmark = pytest.mark.e2e

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("unchanged-night")
    landing, home = tmp / "landing", tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUDAO_", "AIRFLOW_", "AIRFLOW__"))}
    env.update(QUDAO_HOME=str(home), QUDAO_PII_KEY="e2e-test-key", QUDAO_RETRY_DELAY_SECONDS="1")
    out = _qudao(env, "generate", "--landing", str(landing), "--start", str(D1), "--end", str(D2))
    assert out.returncode == 0, out.stderr
    yield {"landing": landing, "home": home, "env": env}
    embedded.stop(home)


def _qudao(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qudao.cli", *args], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT
    )


def _run(night: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    return _qudao(night["env"], "run", "--landing", str(night["landing"]), *extra)


def _airflow_runs(home: Path) -> list[tuple[str, str]]:
    return airflow_rows(
        home / "airflow" / "airflow.db",
        "select run_id, state from dag_run where dag_id = 'channel_nightly' order by id",
    )


def _skipped(out: str) -> list[str]:
    return [
        line.split()[0]
        for line in out.splitlines()
        if "  skipped   nothing changed since it was published" in line
    ]


def test_a_night_that_changed_nothing_is_skipped_until_its_inputs_change(night):
    first = _run(night, "--start", str(D1), "--end", str(D2))
    assert first.returncode == 0, first.stdout + first.stderr
    runs = _airflow_runs(night["home"])
    assert [state for _, state in runs] == ["success", "success"]

    again = _run(night, "--start", str(D1), "--end", str(D2))

    assert again.returncode == 0, again.stdout + again.stderr
    assert _skipped(again.stdout) == [str(D1), str(D2)]
    assert "2 of 2 night(s) succeeded (2 unchanged, skipped)" in again.stdout
    assert _airflow_runs(night["home"]) == runs  # Airflow never started

    # the dealers re-deliver night 2's orders with one line fewer: night 2 runs, night 1 does not
    orders = night["landing"] / "dealer_sales" / str(D2) / "orders.csv"
    lines = orders.read_bytes().splitlines(keepends=True)
    orders.write_bytes(b"".join(lines[:-1]))
    changed = _run(night, "--start", str(D1), "--end", str(D2))
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert _skipped(changed.stdout) == [str(D1)]
    after = _airflow_runs(night["home"])
    assert len(after) == len(runs) + 1 and after[-1][1] == "success"
    assert after[-1][0].startswith(f"qudao__{D2}__")

    forced = _run(night, "--date", str(D1), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert _skipped(forced.stdout) == []
    assert _airflow_runs(night["home"])[-1][0].startswith(f"qudao__{D1}__")
