"""Ship the project files inside the wheel: ``qudao/_project/{dbt_project,expectations,dags,plugins}``.

Everything else is declared in ``pyproject.toml``. An editable install copies nothing: it runs
from the checkout, where ``qudao.config`` finds the same folders (docs/deployment.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROJECT_DIRS = ("dbt_project", "expectations", "dags", "plugins")
#: what dbt, Python and the local runs leave in those folders: never part of a release
NOT_SHIPPED = shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__", "*.pyc", ".user.yml")


class BuildWithProject(build_py):
    """``build_py`` that also copies the project folders into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        shipped = Path(self.build_lib) / "qudao" / "_project"
        shutil.rmtree(shipped, ignore_errors=True)  # a stale build/ must not ship deleted files
        for name in PROJECT_DIRS:
            shutil.copytree(ROOT / name, shipped / name, ignore=NOT_SHIPPED)


setup(cmdclass={"build_py": BuildWithProject})
