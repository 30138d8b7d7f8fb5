"""Imports go down the layers only: orchestration → steps → ledger → warehouse → config.

Read from the source (every ``import``, also those inside functions), so a lazy import
back up is caught too; the one sanctioned exception is listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "include" / "qudao"

#: what each lower layer may import from qudao (its own package always)
MAY_IMPORT = {
    "ledger": {"ledger", "warehouse", "contracts", "constants", "config"},
    "warehouse": {"warehouse", "contracts", "constants", "config"},
    "lineage": {"lineage", "warehouse", "contracts", "config", "constants"},
    "alerts": {"alerts", "ledger", "warehouse", "config", "constants", "contracts", "business_day"},
}
#: warehouse.schema.ensure_schema hands over to the ledger's ensure entry point (a call-time import)
SANCTIONED = {("warehouse/schema.py", "ledger")}


def _qudao_imports(path: Path) -> set[str]:
    """The first component after ``qudao.`` of every import in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        out |= {n.split(".")[1] for n in names if n.startswith("qudao.") and n.count(".") >= 1}
    return out


def test_lower_layers_never_import_upper_ones() -> None:
    wrong = []
    for layer, allowed in MAY_IMPORT.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix()
            wrong += [
                f"{rel} imports qudao.{name}"
                for name in sorted(_qudao_imports(path) - allowed)
                if (rel, name) not in SANCTIONED
            ]
    assert wrong == []


def test_the_lowest_modules_import_no_layer() -> None:
    for name in ("constants.py", "contracts.py", "business_day.py"):
        assert _qudao_imports(PACKAGE / name) <= {"constants"}, name
