"""The semantic manifest dbt writes, pointed at the published marts.

dbt builds the marts into ``marts_candidate`` and its manifest names them there;
metrics must read what BI reads, so every relation is renamed into ``marts``
(without the database name: the warehouse's database may have any name).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qudao.config import settings
from qudao.constants import PUBLISHED_SCHEMA


def semantic_dir() -> Path:
    """Where ``dbt parse`` writes the semantic manifest for metrics (not the nightly ``target/``)."""
    return settings().dbt_project_dir / "target" / "semantic"


def _sources() -> list[Path]:
    project = settings().dbt_project_dir
    files = [project / "dbt_project.yml"]
    files += [p for p in (project / "models").rglob("*") if p.suffix in (".yml", ".yaml", ".sql")]
    return files


def _stale(path: Path) -> bool:
    if not path.exists():
        return True
    built = path.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _sources())


def semantic_manifest_json() -> dict[str, Any]:
    """dbt's ``semantic_manifest.json``, parsed again when a model file is newer."""
    path = semantic_dir() / "semantic_manifest.json"
    if _stale(path):
        _parse_into(path)
    return json.loads(path.read_text(encoding="utf-8"))


def _parse_into(path: Path) -> None:
    from qudao.transform import run_dbt

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        args = ["parse", "--target-path", tmp, "--log-path", tmp, "--log-level", "none", "--no-partial-parse"]
        result = run_dbt(args, None)
        if not result.success:
            raise RuntimeError("dbt parse failed:\n" + "\n".join(result.failures))
        os.replace(Path(tmp) / "semantic_manifest.json", path)  # atomic: a concurrent reader sees old or new


def published(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with every node relation (semantic models, time spines) in ``marts``."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "relation_name" in node and "alias" in node:
                table = node["alias"]
                return {
                    **node,
                    "schema_name": PUBLISHED_SCHEMA,
                    "database": None,
                    "relation_name": f'"{PUBLISHED_SCHEMA}"."{table}"',
                }
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(manifest)
