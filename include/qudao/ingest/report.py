"""What a load did: one :class:`FileResult` per file, a :class:`LoadReport` per date, printable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class FileResult:
    """What happened to one delivered file."""

    source: str
    entity: str
    path: str
    status: str  # loaded / skipped_duplicate / refused
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    #: physical lines after the header (CSV, JSON Lines) or rows after it (XLSX): every one is a
    #: record (loaded or rejected), blank, or a later line of a record that spans lines
    lines_in: int = 0
    lines_blank: int = 0
    lines_continued: int = 0
    reject_share: float = 0.0
    error: str | None = None
    load_id: int | None = None
    sha256: str | None = None
    encoding: str | None = None
    over_threshold: bool = False
    drift: list[str] = field(default_factory=list)
    quarantined_to: str | None = None
    seconds: float = 0.0

    @property
    def qualified(self) -> str:
        return f"{self.source}.{self.entity}"


@dataclass
class LoadReport:
    """The outcome of :func:`load_date`: one :class:`FileResult` per delivered file."""

    business_date: date
    files: list[FileResult] = field(default_factory=list)
    reject_threshold: float = 0.01
    #: ``<source>/<date>/<name>`` of entries no contract entity names (recorded, not loaded)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when any file was refused whole."""
        return not any(f.status == "refused" for f in self.files)

    @property
    def over_threshold(self) -> list[FileResult]:
        """Loaded files whose reject share is above the threshold (the quality gate fails on them)."""
        return [f for f in self.files if f.over_threshold]

    def lines(self) -> list[str]:
        """A per-file summary table for printing."""
        head = (
            f"{'entity':<26} {'file':<16} {'status':<17} {'in':>9} {'loaded':>9} {'rejected':>9} {'share':>7}"
        )
        out = [f"business date {self.business_date.isoformat()}", head, "-" * len(head)]
        for f in self.files:
            name = f.path.rsplit("/", 1)[-1]
            out.append(
                f"{f.qualified:<26} {name:<16} {f.status:<17} {f.rows_in:>9} {f.rows_loaded:>9} "
                f"{f.rows_rejected:>9} {f.reject_share:>7.2%}"
                + (" OVER THRESHOLD" if f.over_threshold else "")
            )
            if f.drift:
                out.append(f"    schema drift: {', '.join(f.drift)}")
            if f.error:
                out.append(f"    error: {f.error}")
        if not self.files:
            out.append("(no files delivered)")
        for name in self.unexpected:
            out.append(f"unexpected file {name}: no contract entity has that name; not loaded")
        return out
