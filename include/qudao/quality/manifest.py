"""What dbt built into ``marts_candidate``, read from ``target/manifest.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from qudao.config import settings
from qudao.constants import CANDIDATE_SCHEMA


@dataclass(frozen=True)
class CandidateModel:
    """A model to publish: its table name, and how a night's part of it is found.

    Date-keyed marts name ``date_column`` (a night replaces its dates); facts that keep
    the latest version of each key name ``unique_key`` and ``changed_column`` (a night
    replaces the keys whose version it delivered); other models are replaced whole.
    """

    name: str
    date_column: str | None
    date_grain: str = "day"  # day | week | month: how a business date maps to the key
    unique_key: tuple[str, ...] = ()
    changed_column: str | None = None

    def keys_for(self, business_dates: list[date]) -> list[date]:
        """Key values of ``date_column`` that the given business dates replace."""
        out = set()
        for d in business_dates:
            if self.date_grain == "week":
                out.add(d - timedelta(days=d.weekday()))
            elif self.date_grain == "month":
                out.add(d.replace(day=1))
            else:
                out.add(d)
        return sorted(out)


def default_manifest_path() -> Path:
    return settings().dbt_project_dir / "target" / "manifest.json"


def candidate_models(manifest_path: Path | None = None) -> list[CandidateModel]:
    """Every model node with schema ``marts_candidate``: its ``meta.date_column`` (yml), or its
    ``meta.changed_column`` (yml) and ``unique_key`` (the model's SQL config)."""
    path = manifest_path or default_manifest_path()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    models = []
    for node in data.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("schema") != CANDIDATE_SCHEMA:
            continue
        config = node.get("config") or {}
        meta = {**(node.get("meta") or {}), **(config.get("meta") or {})}
        column = meta.get("date_column")
        grain = meta.get("date_grain") or ("week" if column and column.startswith("week") else "day")
        changed = meta.get("changed_column")
        # the key is the incremental model's own unique_key: declared once, in its SQL config
        unique_key = (config.get("unique_key") or ()) if changed else ()
        if isinstance(unique_key, str):
            unique_key = [unique_key]
        models.append(
            CandidateModel(
                node.get("alias") or node["name"],
                column,
                grain,
                tuple(unique_key),
                changed if unique_key else None,
            )
        )
    return sorted(models, key=lambda m: m.name)
