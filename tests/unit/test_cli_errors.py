"""A user's mistake ends a ``qudao`` command with one or two lines and a non-zero exit, no traceback.

Commands run in-process through :func:`qudao.cli.main` (stderr captured) and once
through the installed console script; ``QUDAO_HOME`` is a temporary folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from qudao.cli import DEMO_END, DEMO_START, build_parser, main
from qudao.config import PROJECT_ROOT

HIDDEN = "hunter2"  # the URL's password: never printed
UNREACHABLE = f"postgresql://nobody:{HIDDEN}@127.0.0.1:1/x"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("QUDAO_HOME", str(home))
    monkeypatch.delenv("QUDAO_WAREHOUSE_URL", raising=False)
    return home


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()


def test_an_unreachable_warehouse_is_two_lines_without_the_password(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", UNREACHABLE)
    assert main(["status"]) == 1
    lines = _error_lines(capsys)
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        "qudao status: cannot reach the warehouse at postgresql://nobody@127.0.0.1:1/x: "
    )
    assert "Connection refused" in lines[0] or "failed" in lines[0]
    log = home / "logs" / "qudao-errors.log"
    assert lines[1] == (
        f"  Check QUDAO_WAREHOUSE_URL or unset it to use the embedded server. "
        f"(traceback in {log}; --debug shows it)"
    )
    assert HIDDEN not in "\n".join(lines)
    logged = log.read_text(encoding="utf-8")
    assert "qudao status" in logged and "Traceback" in logged and "OperationalError" in logged


def test_debug_shows_the_traceback(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", UNREACHABLE)
    with pytest.raises(psycopg.OperationalError):
        main(["--debug", "status"])
    with pytest.raises(psycopg.OperationalError):
        main(["status", "--debug"])


def test_load_from_a_missing_landing_zone_is_one_line_exit_2(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = tmp_path / "nowhere"
    assert main(["load", "--landing", str(nowhere), "--date", "2026-11-01"]) == 2
    lines = _error_lines(capsys)
    assert lines == [
        f"qudao load: the landing zone {nowhere} does not exist: give --landing FOLDER or set QUDAO_LANDING"
        " (qudao generate writes sample extracts into one)"
    ]
    assert not (home / "warehouse").exists(), "refused before the warehouse was started"


def test_run_from_a_missing_landing_zone_is_refused_before_airflow_starts(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = tmp_path / "nowhere"
    assert main(["run", "--landing", str(nowhere), "--date", "2026-11-01"]) == 2
    (line,) = _error_lines(capsys)
    assert line.startswith(f"qudao run: the landing zone {nowhere} does not exist")
    assert not (home / "airflow").exists() and not (home / "warehouse").exists()


def test_generate_defaults_to_the_demo_range(home: Path, tmp_path: Path) -> None:
    args = build_parser().parse_args(["generate"])
    assert (args.start, args.end) == (DEMO_START, DEMO_END) == (date(2026, 11, 1), date(2026, 11, 14))
    landing = tmp_path / "landing"
    assert main(["generate", "--landing", str(landing)]) == 0
    dates = sorted(p.name for p in (landing / "crm").iterdir())
    assert dates[0] == DEMO_START.isoformat() and dates[-1] == DEMO_END.isoformat() and len(dates) == 14


def test_the_makefile_demo_range_is_the_generate_default() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^DEMO_START \?= (\S+)$", makefile, re.M).group(1) == DEMO_START.isoformat()
    assert re.search(r"^DEMO_END \?= (\S+)$", makefile, re.M).group(1) == DEMO_END.isoformat()


def test_generate_with_the_end_before_the_start_is_one_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    assert main(["generate", "--landing", str(landing), "--start", "2026-11-05", "--end", "2026-11-01"]) == 2
    assert _error_lines(capsys) == ["qudao generate: --end 2026-11-01 is before --start 2026-11-05"]
    assert not landing.exists()


def test_a_bad_argument_value_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["status", "--limit", "0"])
    assert ended.value.code == 2
    assert "argument --limit: not a positive whole number: '0'" in _error_lines(capsys)[-1]


def test_the_console_script_prints_no_traceback(home: Path) -> None:
    env = {"QUDAO_HOME": str(home), "QUDAO_WAREHOUSE_URL": UNREACHABLE, "PATH": "/usr/bin:/bin"}
    script = Path(sys.executable).with_name("qudao")
    done = subprocess.run([str(script), "status"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(
        "qudao status: cannot reach the warehouse at postgresql://nobody@127.0.0.1:1/x"
    )
    assert len(done.stderr.splitlines()) == 2


def test_a_setting_that_is_not_valid_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_PORT", "abc")
    assert main(["status"]) == 2
    (line,) = _error_lines(capsys)
    assert line.startswith("qudao: a QUDAO_* setting in the environment is not valid: ") and "'abc'" in line


@pytest.mark.parametrize("command", [["status"], ["load", "--date", "2026-11-01"], ["docs"], ["rollback"]])
def test_every_warehouse_command_says_the_same_when_it_is_unreachable(
    command: list[str],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", UNREACHABLE)
    monkeypatch.setenv("QUDAO_LANDING", str(tmp_path))
    assert main(command) == 1
    lines = _error_lines(capsys)
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        f"qudao {command[0]}: cannot reach the warehouse at postgresql://nobody@127.0.0.1:1/x"
    )
