"""Limits on how far compressed deliveries (gzip, XLSX's ZIP parts) may expand."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from upath import UPath

from qudao.ingest.errors import FileRefused


@dataclass(frozen=True)
class ExpansionLimits:
    """How far a compressed delivery may expand before it is refused as a decompression bomb."""

    max_bytes: int
    max_ratio: float

    #: below this many expanded bytes the ratio is not held against a file (tiny files compress well)
    RATIO_FLOOR = 16 << 20

    def refusal(self, name: str, expanded: int, compressed: int, part: str = "") -> FileRefused | None:
        """The refusal for ``expanded`` bytes out of ``compressed``, or None within the limits."""
        what = f"{part} " if part else ""
        if expanded > self.max_bytes:
            return FileRefused(
                f"{name}: refused: {what}expands to more than {self.max_bytes >> 20} MiB "
                f"(QUDAO_MAX_EXPANDED_MB); a decompression bomb or a file to split"
            )
        if expanded > self.RATIO_FLOOR and expanded > self.max_ratio * max(compressed, 1):
            return FileRefused(
                f"{name}: refused: {what}expands {expanded / max(compressed, 1):.0f}× its compressed "
                f"size (more than {self.max_ratio:g}×, QUDAO_MAX_EXPANSION_RATIO): a decompression bomb"
            )
        return None


def expansion_limits() -> ExpansionLimits:
    from qudao.config import settings

    cfg = settings()
    return ExpansionLimits(cfg.max_expanded_bytes, cfg.max_expansion_ratio)


class Bounded(io.RawIOBase):
    """A decompressing stream that refuses the file once it expands past the limits."""

    def __init__(self, inner: BinaryIO, path: UPath, compressed: int, limits: ExpansionLimits | None):
        self._inner = inner
        self._path = path
        self._compressed = compressed
        self._limits = limits or expansion_limits()
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.expanded += n
        refusal = self._limits.refusal(self._path.name, self.expanded, self._compressed)
        if refusal is not None:
            raise refusal
        return n


# ----------------------------------------------------------------------------- XLSX
def check_xlsx_expansion(raw: BinaryIO, name: str, limits: ExpansionLimits | None = None) -> int:
    """Refuse a workbook whose parts expand past the limits; return the bytes they expand to.

    The sizes come from the ZIP directory; Python's ``zipfile`` never inflates a part past
    its declared size, so a part cannot lie its way around the check.
    """
    limits = limits or expansion_limits()
    try:
        archive = zipfile.ZipFile(raw)
        parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raw.seek(0)
        return 0  # the XLSX reader names what is wrong with it
    try:
        total = 0
        for part in parts:
            total += part.file_size
            refusal = limits.refusal(name, part.file_size, part.compress_size, f"part {part.filename}")
            refusal = refusal or limits.refusal(name, total, sum(p.compress_size for p in parts))
            if refusal is not None:
                raise refusal
        _inflate_within_declared_sizes(archive, parts, name)
        return total
    finally:
        raw.seek(0)


def _inflate_within_declared_sizes(archive: zipfile.ZipFile, parts: list[zipfile.ZipInfo], name: str) -> None:
    """Inflate every part as far as its declared size: a part that holds more fails its CRC.

    The XLSX reader (Rust) would inflate a part to its end, whatever the directory says;
    this pass (zlib, streaming) makes sure the declared sizes checked above are the real ones.
    """
    try:
        for part in parts:
            with archive.open(part) as f:
                while f.read(1 << 20):
                    pass
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FileRefused(f"{name}: unreadable: not an XLSX workbook ({exc})") from exc
