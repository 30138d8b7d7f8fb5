"""The landing zone as a path: a local folder or any fsspec URL (``memory://``, ``s3://`` …).

Layout: ``<landing>/<source>/<YYYY-MM-DD>/<entity>.<ext>``; refused files go to
``<landing>/_quarantine/<source>/<YYYY-MM-DD>/<file>``.
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from upath import UPath

from qudao.contracts import ENTITIES, SOURCES, Entity
from qudao.ingest.errors import FileRefused

#: what stands in the manifest's entity column for a file no contract entity names
UNEXPECTED_ENTITY = "(unexpected)"


class OutsideLanding(FileRefused):
    """A delivered path that is a symbolic link or leads out of the landing zone: never read, never moved."""


#: Within a date: CRM snapshots first (the foreign keys of later files point at them).
LOAD_ORDER: tuple[str, ...] = (
    "crm.channel_managers",
    "crm.products",
    "crm.partners",
    "crm.channel_filings",
    "crm.visits",
    "call_center.calls",
    "dealer_sales.orders",
    "dealer_sales.inventory",
)
assert sorted(LOAD_ORDER) == sorted(e.qualified for e in ENTITIES)


def landing_path(landing: str | UPath) -> UPath:
    """The landing zone as a :class:`UPath` (a plain path means the local file system)."""
    return landing if isinstance(landing, UPath) else UPath(landing)


def landing_exists(landing: str | UPath) -> bool:
    """False when a local landing zone's folder does not exist (an object store has no folders: True)."""
    path = landing_path(landing)
    return Path(path.path).is_dir() if path.protocol in ("", "file", "local") else True


def date_folder(landing: str | UPath, source: str, business_date: date) -> UPath:
    return landing_path(landing) / source / business_date.isoformat()


def _exists(path: UPath) -> bool:
    try:
        return path.is_file()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return False


def entity_files(landing: str | UPath, entity: Entity, business_date: date) -> list[UPath]:
    """The files delivered for ``entity`` on ``business_date`` (one per accepted format present)."""
    folder = date_folder(landing, entity.source, business_date)
    return [p for fmt in entity.formats if _exists(p := folder / f"{entity.name}.{fmt}")]


def delivered_files(
    landing: str | UPath, business_date: date, sources: Sequence[str] | None = None
) -> list[tuple[Entity, UPath]]:
    """Every delivered file of the date for ``sources`` (default: all), in load order."""
    wanted = set(sources) if sources else set(SOURCES)
    unknown = wanted - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources: {', '.join(sorted(unknown))}")
    by_name = {e.qualified: e for e in ENTITIES}
    out: list[tuple[Entity, UPath]] = []
    for qualified in LOAD_ORDER:
        e = by_name[qualified]
        if e.source in wanted:
            out.extend((e, p) for p in entity_files(landing, e, business_date))
    return out


def missing_entities(landing: str, business_date: date) -> list[str]:
    """Qualified names (``crm.partners`` …) of required entities with no file for the date.

    Any accepted format counts (``orders.csv`` or ``orders.xlsx``; ``calls.jsonl`` or
    ``calls.jsonl.gz``).
    """
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    return [
        e.qualified
        for e in sorted(ENTITIES, key=lambda e: LOAD_ORDER.index(e.qualified))
        if e.required and not entity_files(landing, e, business_date)
    ]


def _is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def confine(landing: str | UPath, path: UPath, allow_symlinks: bool = False) -> None:
    """Raise :class:`OutsideLanding` unless ``path`` lies inside the landing zone, links and all.

    A symbolic link anywhere below the landing root (the date folder, the source folder, the
    file) is refused unless ``allow_symlinks``; even then its target must resolve inside the
    root. For URLs the normalised path must stay under the root's.
    """
    root = landing_path(landing)
    if not _is_local(path):
        base = posixpath.normpath(root.path)
        if not posixpath.normpath(path.path).startswith(base.rstrip("/") + "/"):
            raise OutsideLanding(f"{path.name}: refused: the path leads out of the landing zone {root}")
        return
    top = Path(root.path)
    here = Path(path.path)
    try:
        parts = here.relative_to(top).parts
    except ValueError:
        raise OutsideLanding(f"{path.name}: refused: not inside the landing zone {top}") from None
    walked = top
    for part in parts:
        walked = walked / part
        if walked.is_symlink() and not allow_symlinks:
            what = "folder" if walked != here else "file"
            raise OutsideLanding(
                f"{path.name}: refused: {walked.relative_to(top)} is a symbolic link ({what}); links are "
                "not followed (QUDAO_LANDING_ALLOW_SYMLINKS=true follows those inside the landing zone)"
            )
    if not here.resolve().is_relative_to(top.resolve()):
        raise OutsideLanding(f"{path.name}: refused: its link leads out of the landing zone {top}")


def unexpected_files(
    landing: str | UPath, business_date: date, sources: Sequence[str] | None = None
) -> list[UPath]:
    """Entries of the date's source folders that no contract entity names (wrong case, typos …)."""
    wanted = [s for s in SOURCES if not sources or s in sources]
    out: list[UPath] = []
    for source in wanted:
        folder = date_folder(landing, source, business_date)
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        names = {f"{e.name}.{fmt}" for e in ENTITIES if e.source == source for fmt in e.formats}
        out.extend(p for p in entries if p.name not in names)
    return out


def relative_name(landing: str | UPath, path: UPath) -> str:
    """``<source>/<date>/<file>``: how raw rows and manifests name a delivered file."""
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"


def quarantine(landing: str | UPath, path: UPath, source: str, business_date: date) -> str:
    """Move a refused file to ``<landing>/_quarantine/<source>/<date>/``; return where it went.

    A file of the same name already there is kept: the new one gets a time suffix.
    """
    target_dir = landing_path(landing) / "_quarantine" / source / business_date.isoformat()
    target = target_dir / path.name
    if _exists(target):
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        target = target_dir / f"{path.name}.{stamp}"
    if path.protocol in ("", "file", "local"):
        Path(target_dir.path).mkdir(parents=True, exist_ok=True)
        shutil.move(path.path, target.path)
    else:
        target_dir.fs.makedirs(target_dir.path, exist_ok=True)
        path.fs.mv(path.path, target.path)
    return str(target)
