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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, BinaryIO

from upath import UPath

from qudao.contracts import Column

CHUNK_BYTES = 1 << 20
_BOM = codecs.BOM_UTF8
csv.field_size_limit(16 * 1024 * 1024)


class FileRefused(Exception):
    """The whole file cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Prescan:
    """What one pass over the delivered bytes tells: checksum, size, text encoding."""

    sha256: str
    size: int
    encoding: str | None  # 'utf-8', 'utf-8-sig', 'gb18030'; None for binary formats
    has_nul: bool
    head: bytes = b""  # the first bytes, to name what a refused text file looks like

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


def prescan(path: UPath, text: bool) -> Prescan:
    """Hash the file and, for text files, find which of the accepted encodings it is in.

    Strict UTF-8 (a leading BOM stripped) is tried first, GB18030 otherwise; the
    GB18030 decode itself is checked while parsing. NUL bytes mean a binary file.
    """
    digest = hashlib.sha256()
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8 = True
    has_nul = False
    first = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if not first:
                first = chunk[:4]
            size += len(chunk)
            if text:
                has_nul = has_nul or b"\x00" in chunk
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
        if text and utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    encoding = None
    if text:
        encoding = ("utf-8-sig" if first.startswith(_BOM) else "utf-8") if utf8 else "gb18030"
    return Prescan(digest.hexdigest(), size, encoding, has_nul, first)


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


def _read_record(stream: io.TextIOBase) -> list[str]:
    """Lines of one whole record (quotes balanced), or [] at the end."""
    lines: list[str] = []
    quotes = 0
    while line := stream.readline():
        lines.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            break
    return lines


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
            header_lines = _read_record(self._text)
        except UnicodeDecodeError as exc:
            self.close()
            raise _decode_error(path, encoding, exc) from exc
        if not header_lines:
            self.close()
            raise FileRefused(f"{path.name}: unreadable: empty file, no header row")
        try:
            rows = list(csv.reader(header_lines))
        except csv.Error as exc:
            self.close()
            raise FileRefused(f"{path.name}: unreadable: not CSV ({exc})") from exc
        self.header = normalise_header(rows[0] if rows else [])
        self._next_line = len(header_lines) + 1

    def chunks(self, chunk_chars: int = CHUNK_BYTES) -> Iterator[CsvChunk]:
        """Chunks of whole records until the end of the file."""
        text = self._text
        try:
            while lines := text.readlines(chunk_chars):
                quotes = "".join(lines).count('"')
                odd = quotes % 2
                while odd and (line := text.readline()):  # a quoted field runs on: finish the record
                    lines.append(line)
                    odd = (odd + line.count('"')) % 2
                chunk = CsvChunk(self._next_line, lines, quoted=quotes > 0)
                self._next_line += len(lines)
                yield chunk
        except UnicodeDecodeError as exc:
            raise _decode_error(self.path, self.encoding, exc) from exc

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
    obj: dict[str, Any] | None  # None: not a JSON object
    error: str | None


def jsonl_rows(path: UPath, gz: bool) -> Iterator[JsonRow]:
    """JSON objects with their physical line numbers; blank lines skipped."""
    raw = path.open("rb")
    try:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw  # type: ignore[assignment]
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="\n")
        number = 0
        try:
            for line in text:
                number += 1
                body = line.rstrip("\r\n")
                if not body.strip():
                    continue
                try:
                    obj = json.loads(body)
                except ValueError as exc:
                    yield JsonRow(number, body, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
                    continue
                if not isinstance(obj, dict):
                    yield JsonRow(number, body, None, "not a JSON object")
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


# ----------------------------------------------------------------------------- XLSX
def xlsx_rows(path: UPath) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """Header (row 1 of the first sheet) and an iterator of (row number, cell values)."""
    from openpyxl import load_workbook

    raw = path.open("rb")
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
