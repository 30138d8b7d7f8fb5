"""The ``ops`` schema's migrations, numbered: each runs once, in order, and is recorded.

A migration is a module ``mNNNN_<what>.py`` with one ``SQL`` string; add a new one
with the next number, never edit one a release shipped (a warehouse that applied it
would not see the change). 0001–0005 are the DDL the previous release ran on every
start, written idempotently: on a warehouse that release made they change nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Migration:
    """One numbered step of the ``ops`` schema."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL, recorded with the version (a changed shipped migration shows)."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration of this package, by version; versions are 1, 2, … without gaps."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m") or not info.name[1:5].isdigit():
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(info.name[1:5]), info.name[6:], module.SQL))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"ops migrations must be numbered 1, 2, … without gaps: {versions}")
    return tuple(found)
