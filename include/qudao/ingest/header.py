"""A delivered file's header: normalised names, and the checks that refuse a file by its header."""

from __future__ import annotations

from typing import Any

from qudao.contracts import Entity
from qudao.ingest.errors import FileRefused


def normalise_header(names: list[Any]) -> list[str]:
    """Strip and lower-case header names; unnamed columns become ``column_<n>``."""
    out = []
    for i, name in enumerate(names, start=1):
        text = "" if name is None else str(name).strip().lower()
        out.append(text or f"column_{i}")
    return out


def check_header(entity: Entity, header: list[str], name: str) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRefused(f"{name}: duplicate columns: {', '.join(dupes)}")
    known = set(entity.column_names)
    if not known & set(header):
        raise FileRefused(
            f"{name}: unreadable: not a {entity.qualified} file (no contract column in the header)"
        )
    keys = set(entity.key)
    required = [c.name for c in entity.columns if (c.required or c.name in keys) and c.name not in header]
    if required:
        raise FileRefused(f"{name}: required columns missing: {', '.join(required)}")
