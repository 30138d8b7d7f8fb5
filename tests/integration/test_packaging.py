"""The wheel works when installed for real: not editable, not inside the checkout.

Builds the wheel from the checkout's files, installs it with ``--no-deps`` into a fresh
virtual environment that borrows the dependencies of the running one (no network), and
runs ``qudao`` from a folder outside the checkout with a ``HOME`` of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from qudao.config import CHECKOUT

pytestmark = pytest.mark.integration

UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    home: Path  # HOME of the commands
    cwd: Path  # a folder outside the checkout

    @property
    def package(self) -> Path:
        return (
            self.venv
            / "lib"
            / f"python{sys.version_info.major}.{sys.version_info.minor}"
            / "site-packages"
            / "qudao"
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``qudao ARGS`` of the installed wheel (``python ARGS`` when the first is ``-c``)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("QUDAO_", "PYTHON", "VIRTUAL_ENV"))}
        clean.update(HOME=str(self.home), DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1", **env)
        program = (
            [str(self.venv / "bin" / "python")] if args[0] == "-c" else [str(self.venv / "bin" / "qudao")]
        )
        return subprocess.run(
            [*program, *args], cwd=self.cwd, env=clean, capture_output=True, text=True, timeout=600
        )


def _source_copy(dest: Path) -> Path:
    """The files a release is built from: tracked or new, never ignored (no target/, no .qudao/)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = CHECKOUT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _build(source: Path, out: Path) -> Path:
    build = [str(UV), "build", "--wheel", "--quiet", "-o", str(out), str(source)]
    # the build backend comes from uv's cache when it has it (make install put it there)
    if subprocess.run([*build, "--offline"], capture_output=True).returncode != 0:
        subprocess.run(build, check=True, capture_output=True)
    (wheel,) = out.glob("qudao-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    wheel = _build(_source_copy(base / "src"), base / "dist")
    venv = base / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(UV), "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(wheel)], check=True
    )
    # the dependencies: the running environment's site-packages as a plain path (its .pth
    # files, among them the checkout's editable install, are not processed)
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "_qudao_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (base / "home").mkdir()
    (base / "elsewhere").mkdir()
    return Installed(wheel=wheel, venv=venv, home=base / "home", cwd=base / "elsewhere")


def test_the_wheel_ships_the_project_folders_and_nothing_local(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for name in (
        "qudao/_project/dbt_project/dbt_project.yml",
        "qudao/_project/dbt_project/seeds/ref_regions.csv",
        "qudao/_project/dags/channel_nightly.py",
        "qudao/_project/plugins/README.md",
        "qudao/cli.py",
        "qudao/reports/static/echarts.min.js",  # the reports draw offline, from the wheel
    ):
        assert name in names
    assert any(n.startswith("qudao/_project/expectations/marts/") for n in names)
    assert not [n for n in names if "/target/" in n or "/logs/" in n or "__pycache__" in n]
    # the demo generator, the region seed builder and the test fixtures are tools, not production
    assert not [n for n in names if n.startswith(("qudao/generate/", "qudao/reference/", "qudao_"))]
    assert "qudao/ingest/testing.py" not in names


def test_the_installed_package_finds_its_project_and_keeps_state_in_home(installed: Installed) -> None:
    done = installed.run(
        "-c",
        "import qudao, qudao.config as c; s = c.settings();"
        " print(qudao.__file__, c.PROJECT_ROOT, s.dbt_project_dir, s.home, s.landing, sep='\\n')",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(installed.package / "__init__.py"),
        str(installed.package / "_project"),
        str(installed.package / "_project" / "dbt_project"),
        str(installed.home / ".qudao"),
        str(installed.home / ".qudao" / "landing"),
    ]


def test_generate_without_the_demo_tools_says_how_to_get_them(installed: Installed) -> None:
    done = installed.run("generate", "--landing", str(installed.home / "landing"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "qudao generate: needs the demo tools: make install, or uv pip install --no-deps -e tools"
    ]
    assert not (installed.home / "landing").exists()


def test_qudao_project_dir_wins_and_a_wrong_one_is_one_line(installed: Installed, tmp_path: Path) -> None:
    show = "import qudao.config as c; print(c.PROJECT_ROOT, c.settings().home, sep='\\n')"
    done = installed.run("-c", show, QUDAO_PROJECT_DIR=str(CHECKOUT))
    assert done.stdout.splitlines() == [str(CHECKOUT), str(CHECKOUT / ".qudao")]

    done = installed.run("--help", QUDAO_PROJECT_DIR=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"QUDAO_PROJECT_DIR={tmp_path}: no dbt_project/dbt_project.yml in {tmp_path}"
    ]


def test_help_and_dbt_parse_run_outside_the_checkout(installed: Installed) -> None:
    done = installed.run("--help")
    assert done.returncode == 0, done.stderr
    assert "dbt-parse" in done.stdout and "warehouse" in done.stdout

    done = installed.run("dbt-parse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "dbt manifest written to dbt_project/target/manifest.json"
    manifest = json.loads((installed.package / "_project/dbt_project/target/manifest.json").read_text())
    assert {"model.qudao.mart_channel_coverage", "seed.qudao.ref_regions"} <= set(manifest["nodes"])


def test_warehouse_init_and_sql_against_the_embedded_server(installed: Installed, db_url: str) -> None:
    done = installed.run("warehouse", "init", QUDAO_WAREHOUSE_URL=db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "Schemas, ops tables and roles are in place."

    query = "select nspname from pg_namespace where nspname in ('raw', 'ops', 'marts') order by 1"
    done = installed.run("sql", query, QUDAO_WAREHOUSE_URL=db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["nspname", "marts", "ops", "raw"]
    assert done.stderr.splitlines() == ["(3 rows)"]
