"""No module but the ledger (``include/qudao/ledger``) runs SQL on the ``ops`` schema.

Every string literal outside docstrings is read: one naming an ops table after an SQL
clause (``from ops.x``, ``into ops.x`` …) is SQL on ops; a psycopg ``Identifier("ops", …)``
is too. Prose that only names a table (``see ops.quality_results``) is not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "include" / "qudao"

OPS_SQL = re.compile(r"\b(from|into|update|join|table|view|exists|truncate|on)\s+ops\.\w+", re.IGNORECASE)
OPS_IDENTIFIER = re.compile(r"Identifier\(\s*['\"]ops['\"]")

#: modules whose ops SQL other work of issue 10 is moving into the ledger (transform.py's
#: ops.dbt_state into ledger/dbt_state.py): tolerated until that lands, then empty this
ELSEWHERE_FOR_NOW: set[str] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            out.add(id(first.value))
    return out


def ops_sql_lines(source: str) -> list[int]:
    """Lines of ``source`` with SQL on ops (see the module docstring)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    lines = {
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and OPS_SQL.search(node.value)
    }
    lines |= {n for n, line in enumerate(source.splitlines(), 1) if OPS_IDENTIFIER.search(line)}
    return sorted(lines)


def _offenders() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "dags").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("include/qudao/ledger/"):
            continue
        if lines := ops_sql_lines(path.read_text(encoding="utf-8")):
            out[rel] = lines
    return out


def test_only_the_ledger_runs_sql_on_ops() -> None:
    offenders = {rel: lines for rel, lines in _offenders().items() if rel not in ELSEWHERE_FOR_NOW}
    assert offenders == {}


def test_the_check_sees_sql_and_not_prose() -> None:
    sql = 'def f(c):\n    """Count ops.rejected_rows."""\n    return c.execute("select 1 from ops.x")\n'
    assert ops_sql_lines(sql) == [3]
    assert ops_sql_lines('x = sql.Identifier("ops", "load_manifest")\n') == [1]
    assert ops_sql_lines('"""Stream the rejects into ops.rejected_rows."""\nmsg = "see ops.run_log"\n') == []
