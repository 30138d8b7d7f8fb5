"""Reading delivered files: checksum and encoding, then CSV, JSON Lines and XLSX records.

Everything streams: CSV is read in chunks of whole records (quote parity decides
where a record ends), JSON Lines line by line (gzip decompressed on the fly),
XLSX row by row with openpyxl's read-only mode. Anything that makes a whole file
unusable raises :class:`FileRefused` with a message naming the cause.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, BinaryIO

from upath import UPath

from qudao.contracts import Column

CHUNK_BYTES = 1 << 20
#: a record whose quoted field runs on longer than this is cut and re-read line by line
RUN_ON_CHARS = 4 * CHUNK_BYTES
_BOM = codecs.BOM_UTF8
csv.field_size_limit(16 * 1024 * 1024)


class FileRefused(Exception):
    """The whole file cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Prescan:
    """What one pass over the delivered bytes tells: checksum, size, text encoding, lines."""

    sha256: str
    size: int
    encoding: str | None  # 'utf-8', 'utf-8-sig', 'gb18030'; None for binary formats
    has_nul: bool
    head: bytes = b""  # the first bytes, to name what a refused text file looks like
    #: physical lines of a text file (LF, CRLF or a lone CR end one; so does the end of
    #: the file), counted on the bytes, independently of any parser
    lines: int = 0
    #: why text that decodes as GB18030 is not plausibly Chinese (None when it is)
    implausible: str | None = None

    def binary_cause(self) -> str:
        """Why a text file with NUL bytes is refused, naming the encoding when a BOM tells it."""
        for bom, name in (
            (codecs.BOM_UTF32_LE, "UTF-32"),
            (codecs.BOM_UTF32_BE, "UTF-32"),
            (codecs.BOM_UTF16_LE, "UTF-16"),
            (codecs.BOM_UTF16_BE, "UTF-16"),
        ):
            if self.head.startswith(bom):
                return f"encoding is {name}, none of UTF-8, UTF-8 with BOM, GB18030"
        return "NUL bytes: binary content or UTF-16/32, none of UTF-8, UTF-8 with BOM, GB18030"


def file_format(path: UPath) -> str:
    """'csv', 'jsonl', 'jsonl.gz' or 'xlsx' from the file name."""
    name = path.name.lower()
    for ext in ("jsonl.gz", "jsonl", "csv", "xlsx"):
        if name.endswith("." + ext):
            return ext
    raise FileRefused(f"{path.name}: unknown file type")


class _LineCounter:
    """Physical lines of a byte stream: LF, CRLF and a lone CR each end one, as text readers split.

    Neither byte can occur inside a UTF-8 or GB18030 multi-byte sequence, so counting
    bytes gives the lines the decoded text has.
    """

    def __init__(self) -> None:
        self.breaks = 0
        self._last = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        crlf = chunk.count(b"\r\n") + (self._last == b"\r" and chunk[:1] == b"\n")
        self.breaks += chunk.count(b"\n") + chunk.count(b"\r") - crlf
        self._last = chunk[-1:]

    def lines(self, size: int) -> int:
        """Lines in all: breaks, plus a last line that has no break of its own."""
        return self.breaks + (size > 0 and self._last not in (b"\n", b"\r"))


class _Gb18030Plausibility:
    """Is text that decodes as GB18030 Chinese, or another legacy encoding that happens to decode?

    Shift-JIS, Big5 or EUC-KR bytes mostly decode to valid but rare GB18030 characters
    (outside GB2312's common hanzi and punctuation): Japanese kana land in GBK/3. Text
    where more than :data:`RARE_SHARE` of the non-ASCII characters are rare is refused.
    """

    RARE_SHARE = 0.2
    MIN_RARE = 4  # a few rare characters (a partner's name) are normal

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("gb18030")("strict")
        self.non_ascii = 0
        self.rare = 0
        self.decodes = True

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if not self.decodes:
            return
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.decodes = False  # the parser names the bad sequence
            return
        non_ascii = len(text) - len(text.encode("ascii", "ignore"))
        if non_ascii:
            common = text.encode("gb2312", "replace")
            self.rare += common.count(b"?") - text.count("?")
            self.non_ascii += non_ascii

    def verdict(self, sample: bytes) -> str | None:
        """Why the text is not Chinese, naming the legacy encoding ``sample`` decodes in; or None."""
        if not self.decodes or self.rare < self.MIN_RARE or self.rare <= self.RARE_SHARE * self.non_ascii:
            return None
        looks = ""
        for name, codec in (("Shift-JIS", "shift_jis"), ("Big5", "big5"), ("EUC-KR", "euc_kr")):
            try:  # not final: the sample may end inside a character
                codecs.getincrementaldecoder(codec)("strict").decode(sample, False)
            except UnicodeDecodeError:
                continue
            looks = f", it looks like {name}"
            break
        return (
            f"encoding is none of UTF-8, UTF-8 with BOM, GB18030: the bytes decode as GB18030 but "
            f"{self.rare} of {self.non_ascii} non-ASCII characters are outside common Chinese{looks}"
        )


def prescan(path: UPath, text: bool) -> Prescan:
    """Hash the file and, for text files, find which of the accepted encodings it is in.

    Strict UTF-8 (a leading BOM stripped) is tried first, GB18030 otherwise, and GB18030
    text must look like Chinese (:class:`_Gb18030Plausibility`); a bad GB18030 sequence
    is named while parsing. NUL bytes mean a binary file. Lines are counted on the bytes.
    """
    digest = hashlib.sha256()
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8 = True
    has_nul = False
    first = b""
    lines = _LineCounter()
    gb: _Gb18030Plausibility | None = None
    sample = b""  # bytes from the first non-ASCII one on, to name the encoding they look like
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if not first:
                first = chunk[:4]
            if text:
                has_nul = has_nul or b"\x00" in chunk
                lines.feed(chunk)
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
                        gb = _Gb18030Plausibility()
                        gb.feed(_prefix(path, size))  # what UTF-8 had accepted so far
                if gb is not None:
                    gb.feed(chunk)
                    if len(sample) < SAMPLE_BYTES:
                        found = _NON_ASCII.search(chunk) if not sample else None
                        start = found.start() if found else 0 if sample else len(chunk)
                        sample += chunk[start : start + SAMPLE_BYTES - len(sample)]
            size += len(chunk)
        if text and utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
                gb = _Gb18030Plausibility()
                gb.feed(_prefix(path, size))
    encoding = None
    implausible = None
    if text:
        encoding = ("utf-8-sig" if first.startswith(_BOM) else "utf-8") if utf8 else "gb18030"
        if gb is not None:
            gb.feed(b"", final=True)
            implausible = gb.verdict(sample)
    return Prescan(
        digest.hexdigest(), size, encoding, has_nul, first, lines.lines(size) if text else 0, implausible
    )


#: how much of a non-UTF-8 file is tried against other encodings to name it
SAMPLE_BYTES = 4096
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _prefix(path: UPath, size: int) -> bytes:
    """The first ``size`` bytes of the file (read again: UTF-8 had accepted them)."""
    if not size:
        return b""
    with path.open("rb") as f:
        return f.read(size)


def _decode_error(path: UPath, encoding: str, exc: UnicodeDecodeError) -> FileRefused:
    if encoding == "gb18030":
        return FileRefused(
            f"{path.name}: unreadable: encoding is none of UTF-8, UTF-8 with BOM, GB18030 "
            f"(invalid GB18030 byte sequence {exc.object[exc.start : exc.start + 4]!r})"
        )
    return FileRefused(f"{path.name}: unreadable: not valid {encoding} ({exc.reason})")


# ----------------------------------------------------------------------------- CSV
@dataclass
class CsvChunk:
    """Whole CSV records: ``lines[0]`` is physical line ``first_line`` of the file."""

    first_line: int
    lines: list[str]
    quoted: bool = True  # False: no quote character anywhere in the chunk


def normalise_header(names: list[Any]) -> list[str]:
    """Strip and lower-case header names; unnamed columns become ``column_<n>``."""
    out = []
    for i, name in enumerate(names, start=1):
        text = "" if name is None else str(name).strip().lower()
        out.append(text or f"column_{i}")
    return out


class CsvFile:
    """A CSV file opened for reading in whole-record chunks."""

    def __init__(self, path: UPath, encoding: str):
        self.path = path
        self.encoding = encoding
        self._raw: BinaryIO = path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding=encoding, errors="strict", newline="")
        try:
            header_line = self._text.readline()  # a header never spans lines
        except UnicodeDecodeError as exc:
            self.close()
            raise _decode_error(path, encoding, exc) from exc
        if not header_line:
            self.close()
            raise FileRefused(f"{path.name}: unreadable: empty file, no header row")
        if header_line.count('"') % 2:
            self.close()
            raise FileRefused(f"{path.name}: unreadable: line 1 (the header): a quote opens and never closes")
        try:
            rows = list(csv.reader([header_line]))
        except csv.Error as exc:
            self.close()
            raise FileRefused(f"{path.name}: unreadable: not CSV ({exc})") from exc
        self.header = normalise_header(rows[0] if rows else [])
        self._next_line = 2

    def chunks(self, chunk_chars: int = CHUNK_BYTES) -> Iterator[CsvChunk]:
        """Chunks of whole records until the end of the file.

        A quote that opens a field and never closes would make the rest of the file one
        record: a run-on record is cut after :data:`RUN_ON_CHARS` characters, and the
        loader re-reads a broken multi-line record line by line.
        """
        text = self._text
        try:
            while lines := text.readlines(chunk_chars):
                quotes = "".join(lines).count('"')
                odd = quotes % 2
                run_on = 0
                while odd and run_on < RUN_ON_CHARS and (line := text.readline()):  # finish the record
                    lines.append(line)
                    run_on += len(line)
                    odd = (odd + line.count('"')) % 2
                chunk = CsvChunk(self._next_line, lines, quoted=quotes > 0)
                self._next_line += len(lines)
                yield chunk
        except UnicodeDecodeError as exc:
            raise _decode_error(self.path, self.encoding, exc) from exc

    @property
    def lines_read(self) -> int:
        """Physical lines read so far, the header's included."""
        return self._next_line - 1

    def close(self) -> None:
        try:
            self._text.close()
        except Exception:
            self._raw.close()


# ----------------------------------------------------------------------------- values
def json_value(value: Any, col: Column | None) -> str:
    """A JSON value as the text a CSV would carry."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        integral = value.is_integer() and col is not None and col.type == "int"
        return str(int(value)) if integral else repr(value)
    return json.dumps(value, ensure_ascii=False)


def cell_value(value: Any, col: Column | None) -> str:
    """An XLSX cell value as the text a CSV would carry, read by the column's type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if col is not None and col.type == "date" and value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# ----------------------------------------------------------------------------- JSON Lines
@dataclass
class JsonRow:
    line: int
    raw: str
    obj: dict[str, Any] | None  # None: not a JSON object (or a blank line)
    error: str | None
    kind: str = "object"  # what the line holds: object, array, string, number, …, blank, invalid


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def jsonl_rows(path: UPath, gz: bool, limits: ExpansionLimits | None = None) -> Iterator[JsonRow]:
    """JSON values with their physical line numbers; blank lines come as ``kind='blank'``."""
    raw = path.open("rb")
    try:
        stream: BinaryIO = raw
        if gz:
            gunzip = gzip.GzipFile(fileobj=raw, mode="rb")
            stream = _Bounded(gunzip, path, path.stat().st_size, limits)  # type: ignore[assignment]
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="\n")
        number = 0
        try:
            for line in text:
                number += 1
                body = line.rstrip("\r\n")
                if not body.strip():
                    yield JsonRow(number, body, None, None, "blank")
                    continue
                try:
                    obj = json.loads(body)
                except ValueError as exc:
                    yield JsonRow(
                        number, body, None, f"not valid JSON ({exc.msg} at column {exc.colno})", "invalid"
                    )
                    continue
                if not isinstance(obj, dict):
                    kind = "null" if obj is None else _JSON_KINDS.get(type(obj), "value")
                    yield JsonRow(number, body, None, "not a JSON object", kind)
                    continue
                yield JsonRow(number, body, obj, None)
        except UnicodeDecodeError as exc:
            raise FileRefused(f"{path.name}: unreadable: not UTF-8 ({exc.reason})") from exc
        except (EOFError, gzip.BadGzipFile, zlib_error()) as exc:
            raise FileRefused(f"{path.name}: unreadable: broken or truncated gzip ({exc})") from exc
    finally:
        raw.close()


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


# ----------------------------------------------------------------------------- expansion limits
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


class _Bounded(io.RawIOBase):
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
def check_xlsx_expansion(raw: BinaryIO, name: str, limits: ExpansionLimits | None = None) -> None:
    """Refuse a workbook whose parts expand past the limits, before anything is decompressed.

    The sizes come from the ZIP directory; Python's ``zipfile`` never inflates a part past
    its declared size, so a part cannot lie its way around the check.
    """
    limits = limits or expansion_limits()
    try:
        parts = zipfile.ZipFile(raw).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # openpyxl names what is wrong with it
    finally:
        raw.seek(0)
    total = 0
    for part in parts:
        total += part.file_size
        refusal = limits.refusal(name, part.file_size, part.compress_size, f"part {part.filename}")
        refusal = refusal or limits.refusal(name, total, sum(p.compress_size for p in parts))
        if refusal is not None:
            raise refusal


def xlsx_rows(
    path: UPath, limits: ExpansionLimits | None = None
) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """Header (row 1 of the first sheet) and an iterator of (row number, cell values)."""
    from openpyxl import load_workbook

    raw = path.open("rb")
    try:
        check_xlsx_expansion(raw, path.name, limits)
    except FileRefused:
        raw.close()
        raise
    try:
        wb = load_workbook(raw, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: not an XLSX workbook ({exc})") from exc
    except Exception as exc:  # openpyxl raises a range of its own errors for broken files
        raw.close()
        cause = f"{type(exc).__name__}: {exc}"
        raise FileRefused(f"{path.name}: unreadable: not an XLSX workbook ({cause})") from exc
    if not wb.worksheets:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: workbook has no sheet")
    rows = wb.worksheets[0].iter_rows(values_only=True)
    try:
        first = next(rows, None)
    except Exception as exc:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: broken XLSX sheet ({exc})") from exc
    if first is None:
        wb.close()
        raw.close()
        raise FileRefused(f"{path.name}: unreadable: first sheet is empty, no header row")
    cells = list(first)
    while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
        cells.pop()
    header = normalise_header(cells)

    def body() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(rows, start=2):
                values = list(row)
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                    continue
                yield number, values
        except Exception as exc:
            raise FileRefused(f"{path.name}: unreadable: broken XLSX sheet ({exc})") from exc
        finally:
            wb.close()
            raw.close()

    return header, body()
