"""Expectation suites: JSON files under ``expectations/``, reviewed like code.

Each file is a Great Expectations suite (``name``, ``expectations``, ``meta``) with
two qudao additions: every expectation's ``meta.severity`` (``error`` blocks
publishing, ``warn`` is reported) and ``meta.qudao`` on the suite telling which
table it validates, at which stage (``raw`` or ``candidate``), the date column
that selects the night's rows, and the plain-SQL checks GX cannot express well
(``volume``, ``freshness``).

The raw suites are generated from :mod:`qudao.contracts`
(``python -m qudao.quality.suites``); the mart suites are written by hand from
``marts.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qudao.config import PROJECT_ROOT
from qudao.contracts import ENTITIES, Entity

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


@dataclass(frozen=True)
class Suite:
    """One suite file, parsed."""

    name: str
    stage: str  # "raw" or "candidate"
    table: str  # raw: schema-qualified; candidate: the model name in marts_candidate
    date_column: str | None
    expectations: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)  # volume, freshness, entity, ...
    path: Path | None = None

    def columns(self) -> set[str]:
        """Columns the expectations refer to."""
        cols: set[str] = set()
        for e in self.expectations:
            kw = e.get("kwargs", {})
            for key in ("column", "column_A", "column_B"):
                if key in kw:
                    cols.add(kw[key])
            cols.update(kw.get("column_list", []))
        return cols


def load_suite(path: Path) -> Suite:
    """Parse one suite file; raises ValueError on a malformed one."""
    data = json.loads(path.read_text(encoding="utf-8"))
    q = data.get("meta", {}).get("qudao", {})
    for e in data.get("expectations", []):
        sev = e.get("meta", {}).get("severity")
        if sev not in ("error", "warn"):
            raise ValueError(f"{path.name}: expectation {e.get('type')} has no severity error|warn")
    if q.get("stage") not in ("raw", "candidate"):
        raise ValueError(f"{path.name}: meta.qudao.stage must be raw or candidate")
    options = {k: v for k, v in q.items() if k not in ("stage", "table", "date_column")}
    return Suite(
        name=data["name"],
        stage=q["stage"],
        table=q["table"],
        date_column=q.get("date_column"),
        expectations=list(data.get("expectations", [])),
        options=options,
        path=path,
    )


def load_suites(directory: Path | None = None, stage: str | None = None) -> list[Suite]:
    """All suites under ``directory`` (default ``expectations/``), optionally of one stage."""
    directory = directory or EXPECTATIONS_DIR
    suites = [load_suite(p) for p in sorted(directory.rglob("*.json"))]
    return [s for s in suites if stage is None or s.stage == stage]


def _exp(type_: str, severity: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": {"severity": severity}}


def raw_suite(entity: Entity) -> dict[str, Any]:
    """The generated suite for one raw entity, from its contract."""
    # Types, required values, enums, ranges and patterns are the loader's (a broken row is a
    # reject, docs/quality.md): the suite keeps only what one row cannot show. A record may
    # be resent with a later updated_at (staging keeps the latest), so the key alone may
    # repeat; the same version twice in one night is ambiguous: reported.
    exps: list[dict[str, Any]] = []
    versioned = [*entity.key, "updated_at"] if "updated_at" in entity.column_names else list(entity.key)
    if len(versioned) == 1:
        exps.append(_exp("expect_column_values_to_be_unique", "warn", column=versioned[0]))
    else:
        exps.append(_exp("expect_compound_columns_to_be_unique", "warn", column_list=versioned))
    # Event extracts vary by weekday (no visits on a Sunday): their volume only warns.
    volume_severity = "error" if entity.snapshot or entity.name == "inventory" else "warn"
    return {
        "name": f"raw.{entity.raw_table}",
        "meta": {
            "qudao": {
                "stage": "raw",
                "table": f"raw.{entity.raw_table}",
                "date_column": "_business_date",
                "entity": entity.qualified,
                "required": entity.required,
                "volume": {"low": 0.5, "high": 2.0, "min_history": 7, "severity": volume_severity},
                "generated_by": "python -m qudao.quality.suites (from qudao.contracts)",
            }
        },
        "expectations": exps,
    }


def write_raw_suites(directory: Path | None = None) -> list[Path]:
    """(Re)write ``expectations/raw/*.json`` from the contracts."""
    target = (directory or EXPECTATIONS_DIR) / "raw"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in ENTITIES:
        path = target / f"{e.raw_table}.json"
        path.write_text(json.dumps(raw_suite(e), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_raw_suites():
        print(p.relative_to(PROJECT_ROOT))
