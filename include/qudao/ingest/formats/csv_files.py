"""CSV: read in chunks of whole records (quote parity decides where a record ends), fed to the sink.

A chunk without a quote character takes the hot path: a record is a line, its fields
split at commas. Records spanning lines are judged by csv.reader; a quote that opens
and never closes has its lines read again one by one, so no delivered row disappears
inside another.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, BinaryIO

from upath import UPath

from qudao.ingest.errors import FileRefused
from qudao.ingest.header import normalise_header
from qudao.ingest.prescan import CHUNK_BYTES
from qudao.ingest.sink import RowSink, extra_json
from qudao.ingest.validate import RowError, RowPlan

if TYPE_CHECKING:
    import numpy as np

    from qudao.ingest.columnar import ColumnarLoad

#: a record whose quoted field runs on longer than this is cut and re-read line by line
RUN_ON_CHARS = 4 * CHUNK_BYTES
#: a chunk is about this many characters (bytes for UTF-8): pyarrow's reader and the columnar
#: checks have fixed costs per chunk (about a hundred compute calls), a few MiB make them small
CSV_CHUNK_CHARS = 4 * CHUNK_BYTES

csv.field_size_limit(16 * 1024 * 1024)


def _decode_error(path: UPath, encoding: str, exc: UnicodeDecodeError) -> FileRefused:
    where = _line_of_bad_bytes(path, encoding)
    at = f"line {where}: " if where else ""
    if encoding == "gb18030":
        return FileRefused(
            f"{path.name}: unreadable: encoding is none of UTF-8, UTF-8 with BOM, GB18030 "
            f"({at}invalid GB18030 byte sequence {exc.object[exc.start : exc.start + 4]!r})"
        )
    return FileRefused(f"{path.name}: unreadable: not valid {encoding} ({at}{exc.reason})")


_LONE_CR = re.compile(rb"\r(?!\n)")


def _line_of_bad_bytes(path: UPath, encoding: str) -> int | None:
    """The physical line (1-based) holding the first byte sequence ``encoding`` cannot decode.

    Read again only for the error message. A line break (LF, CRLF, a lone CR) never
    occurs inside a UTF-8 or GB18030 sequence, so each line decodes on its own.
    """
    codec = "utf-8" if encoding.startswith("utf-8") else encoding
    line = 0
    with path.open("rb") as f:
        for physical in f:  # split at LF; a lone CR ends a line too
            for part in _LONE_CR.split(physical):
                line += 1
                try:
                    part.decode(codec)
                except UnicodeDecodeError:
                    return line
    return None


def _gb18030_check(block: bytes) -> None:
    """Raise the decoder's :class:`UnicodeDecodeError` if ``block`` (whole lines) is not GB18030.

    A GB18030 character is one to four bytes and only its first is 0x81-0xFE; an ASCII
    byte more than three bytes after the last non-ASCII one is a character of its own,
    so the decoder is at a character boundary there and leaves it there. Such bytes are
    left out (most of a CSV line's) and the rest is decoded: it decodes exactly when the
    whole does. On a failure the whole block is decoded for the decoder's own error.
    """
    import numpy as np

    a = np.frombuffer(block, np.uint8)
    keep = a >= 0x80
    near = keep.copy()
    for k in (1, 2, 3):
        near[k:] |= keep[:-k]
    try:
        a[near].tobytes().decode("gb18030")
    except UnicodeDecodeError:
        block.decode("gb18030")  # the decoder's own error, where it is in the block


# ----------------------------------------------------------------------------- CSV
class CsvChunk:
    """Whole CSV records: ``lines[0]`` is physical line ``first_line`` of the file.

    A chunk holds its records as text (``str``) or as UTF-8 bytes (``data``), whichever
    it was read as, and makes the other only when asked: a UTF-8 file's quote-free
    chunks stay bytes from the file to pyarrow. The text is split into lines only when
    asked, and the columnar path finds line breaks in the bytes (:attr:`line_ends`)
    only for a chunk with a row it cannot take as it is.
    """

    def __init__(
        self,
        first_line: int,
        text: str | None = None,
        quoted: bool = True,
        *,
        data: bytes | None = None,
        source: CsvFile | None = None,
        codec: str = "utf-8",
    ):
        self.first_line = first_line
        self.quoted = quoted  # False: no quote character anywhere in the chunk
        #: the encoding of :attr:`data`: 'utf-8', or 'gb18030' for a GB18030 file's chunk read as bytes
        #: (whose sequences the reader checked)
        self.codec = codec
        #: :attr:`data` is the file's bytes as read (not the text encoded again)
        self.as_read = data is not None
        if text is not None:
            self.text = text
        if data is not None:
            self.data = data
        self._source = source  # names the file if its bytes do not decode
        #: physical lines, when a reader counted them (pyarrow's rows and invalid rows)
        self.counted_lines: int | None = None

    @cached_property
    def text(self) -> str:
        """The records as text (decoded from :attr:`data` when the chunk was read as bytes)."""
        try:
            return self.data.decode(self.codec)
        except UnicodeDecodeError as exc:
            if self._source is None:
                raise
            raise _decode_error(self._source.path, self._source.encoding, exc) from exc

    @cached_property
    def lines(self) -> list[str]:
        """The physical lines, each with its line break (LF, CRLF or a lone CR), as text readers split."""
        return io.StringIO(self.text, newline="").readlines()

    @cached_property
    def data(self) -> bytes:
        """The records' bytes in :attr:`codec` (the text in UTF-8 when the chunk was read as text)."""
        return self.text.encode("utf-8")

    @cached_property
    def line_ends(self) -> np.ndarray:
        """Offset in :attr:`data` of each line's last byte: its line break, or the chunk's last byte."""
        import numpy as np  # only the columnar path asks

        a = np.frombuffer(self.data, np.uint8)
        lf = a == LF
        cr = a == CR
        cr[:-1] &= ~lf[1:]  # a CR before an LF ends no line of its own
        ends = np.flatnonzero(lf | cr)
        if len(a) and not (lf[-1] or cr[-1]):
            ends = np.append(ends, len(a) - 1)
        return ends

    @property
    def line_count(self) -> int:
        if "line_ends" in self.__dict__:
            return len(self.line_ends)
        if self.counted_lines is not None:
            return self.counted_lines
        return len(self.lines)


LF, CR = 0x0A, 0x0D


#: bytes read ahead at a time to finish a line
_READ_AHEAD = 1 << 16


class CsvFile:
    """A CSV file opened for reading in whole-record chunks.

    The file is read as bytes. A chunk without a quote character is handed on as its
    bytes and decoded only if the row path asks for its text: pyarrow checks the UTF-8
    of the chunks it reads; a GB18030 chunk's sequences are checked here, as it is read,
    on the bytes that can hold one (:func:`_gb18030_check`). A chunk with a quote is
    decoded (the row path reads it). A BOM before the header is stripped.
    """

    def __init__(self, path: UPath, encoding: str):
        self.path = path
        self.encoding = encoding
        #: the codec of the bytes after the header
        self.codec = "utf-8" if encoding.startswith("utf-8") else encoding
        self._raw: BinaryIO = path.open("rb")
        self._pending = b""  # bytes read ahead, from offset _pos on
        self._pos = 0
        self._eof = False
        try:
            head = self._read_line()  # a header never spans lines
            if encoding == "utf-8-sig" and head.startswith(codecs.BOM_UTF8):
                head = head[len(codecs.BOM_UTF8) :]
            header_line = head.decode(self.codec)
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

    # --- reading bytes
    def _fill(self) -> bool:
        """Read ahead; False at the end of the file."""
        if self._eof:
            return False
        more = self._raw.read(_READ_AHEAD)
        if not more:
            self._eof = True
            return False
        self._pending = self._pending[self._pos :] + more
        self._pos = 0
        return True

    def _read_line(self) -> bytes:
        """The next physical line with its line break (LF, CRLF or a lone CR), as text readers split."""
        searched = self._pos
        while True:
            buf, pos = self._pending, self._pos
            lf = buf.find(b"\n", searched)
            cr = buf.find(b"\r", searched, len(buf) if lf < 0 else lf)
            if cr >= 0:
                if cr + 1 == len(buf) and self._fill():  # a CR last: one more byte tells CRLF
                    searched = cr - pos
                    continue
                end = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif lf >= 0:
                end = lf + 1
            elif self._fill():
                searched = len(buf) - pos
                continue
            else:
                end = len(buf)
            self._pos = end
            return buf[pos:end]

    def _read_block(self, size: int) -> bytes:
        """About ``size`` bytes, finished at the end of a line."""
        avail = len(self._pending) - self._pos
        if avail >= size:
            block = self._pending[self._pos : self._pos + size]
            self._pos += size
        else:
            block = self._pending[self._pos :]
            self._pending, self._pos = b"", 0
            if not self._eof:
                block += self._raw.read(size - avail)
        if not block:
            return block
        if block[-1] == LF:
            return block
        if block[-1] == CR:  # CRLF cut between its bytes?
            if (self._pos < len(self._pending) or self._fill()) and self._pending[self._pos] == LF:
                self._pos += 1
                block += b"\n"
            return block
        return block + self._read_line()

    def chunks(self, chunk_chars: int = CSV_CHUNK_CHARS) -> Iterator[CsvChunk]:
        """Chunks of whole records until the end of the file (``chunk_chars``: about that many bytes).

        A quote that opens a field and never closes would make the rest of the file one
        record: a run-on record is cut after :data:`RUN_ON_CHARS` characters, and the
        loader re-reads a broken multi-line record line by line.
        """
        codec = self.codec
        try:
            while block := self._read_block(chunk_chars):
                if b'"' in block:
                    chunk = self._finish_record(block.decode(codec), lambda: self._read_line().decode(codec))
                elif codec == "utf-8" or block.isascii():  # ASCII is UTF-8 too
                    chunk = CsvChunk(self._next_line, quoted=False, data=block, source=self)
                else:
                    _gb18030_check(block)
                    chunk = CsvChunk(self._next_line, quoted=False, data=block, source=self, codec=codec)
                yield chunk
                self._next_line += chunk.line_count
        except UnicodeDecodeError as exc:
            raise _decode_error(self.path, self.encoding, exc) from exc

    def _finish_record(self, block: str, readline: Callable[[], str]) -> CsvChunk:
        """The chunk of ``block`` and, while a quote is open, the lines after it (see :meth:`chunks`)."""
        quotes = block.count('"')
        odd = quotes % 2
        run_on = 0
        more = []
        while odd and run_on < RUN_ON_CHARS and (line := readline()):  # finish the record
            more.append(line)
            run_on += len(line)
            odd = (odd + line.count('"')) % 2
        return CsvChunk(self._next_line, block + "".join(more) if more else block, quoted=quotes > 0)

    @property
    def lines_read(self) -> int:
        """Physical lines read so far, the header's included."""
        return self._next_line - 1

    def close(self) -> None:
        self._raw.close()


def feed_csv(sink: RowSink, f: CsvFile, columnar: ColumnarLoad | None = None) -> None:
    """The hot loop: whole-record chunks → csv.reader → one regex per row → COPY text."""
    plan = sink.plan
    fast = plan.fast
    join = "\t".join
    suffix = sink.suffix
    fks = sink.fks
    has_fk = bool(fks.checks)
    fk_failure = fks.failure
    self_known, self_key = fks.self_known, fks.self_key
    projected = plan.projected
    index = plan.field_index
    extra_idx = plan.extra
    width = plan.width
    for chunk in f.chunks():
        base = chunk.first_line
        if not projected and not chunk.quoted:
            if columnar is not None:
                columnar.feed(chunk)
            else:
                _feed_plain_lines(sink, chunk.lines, base)
            continue
        lines = chunk.lines
        reader = csv.reader(lines)
        prev = 0
        out = sink.out
        try:
            for row in reader:
                start = prev
                prev = reader.line_num
                if not row:
                    sink.blank_lines += prev - start
                    continue
                if prev - start > 1:  # a record over several lines: real, or a quote that ran on?
                    if _broken_record(plan, row):
                        _reread_lines(sink, lines[start:prev], base + start)
                        continue
                    sink.continued_lines += prev - start - 1
                sink.rows_in += 1
                line = base + start
                fields = row
                if projected:
                    if len(row) != width:
                        raw = "".join(lines[start:prev]).rstrip("\r\n")
                        sink.reject(line, raw, f"expected {width} fields, got {len(row)}")
                        continue
                    row = [row[i] for i in index]
                s = join(row)
                if fast(s):
                    extra = ""
                    if extra_idx:
                        try:
                            extra = extra_json((name, fields[i]) for i, name in extra_idx)
                        except RowError as exc:
                            sink.reject(line, "".join(lines[start:prev]).rstrip("\r\n"), str(exc))
                            continue
                    if has_fk and fk_failure(row) is not None:
                        sink.accept(row, s, line, "".join(lines[start:prev]).rstrip("\r\n"), extra)
                        continue
                    if self_known is not None:
                        self_known.add(row[self_key])
                    out.append(f"{s}\t{line}{extra}{suffix}")
                    continue
                _general_record(sink, fields, line, "".join(lines[start:prev]).rstrip("\r\n"))
        except csv.Error as exc:
            where = f"near line {base + prev}"
            raise FileRefused(f"{f.path.name}: unreadable: broken CSV {where} ({exc})") from exc
        sink.flush()


def _general_record(sink: RowSink, fields: list[str], line: int, raw: str) -> None:
    """One counted CSV record the fast path did not take: width, drift columns, then the slow path."""
    plan = sink.plan
    if len(fields) != plan.width:
        sink.reject(line, raw, f"expected {plan.width} fields, got {len(fields)}")
        return
    try:
        extra = extra_json((name, fields[i]) for i, name in plan.extra) if plan.extra else ""
    except RowError as exc:
        sink.reject(line, raw, str(exc))
        return
    row = [fields[i] for i in plan.field_index] if plan.projected else fields
    sink.row(row, line, raw, extra)


def _broken_record(plan: RowPlan, fields: list[str]) -> bool:
    """Is a record that spans lines broken (a quote that never closed swallowed the lines after it)?

    A real multi-line record has the header's width and its line breaks only in prose
    columns (notes, names, reasons) or in columns the contract does not know.
    """
    if len(fields) != plan.width:
        return True
    return any(
        not prose and ("\n" in fields[i] or "\r" in fields[i])
        for i, prose in zip(plan.field_index, plan.prose, strict=True)
    )


def _reread_lines(sink: RowSink, lines: list[str], first_line: int) -> None:
    """Judge each physical line of a broken record as a record of its own.

    The line where the quote opened is rejected; the lines it had swallowed load (or are
    rejected) on their own merits, so no delivered row disappears inside another.
    """
    span = len(lines)
    for k, text in enumerate(lines):
        raw = text.rstrip("\r\n")
        if not raw:
            sink.blank_lines += 1
            continue
        sink.rows_in += 1
        line = first_line + k
        if raw.count('"') % 2:
            sink.reject(
                line,
                raw,
                f"a quote opens a field and never closes on this line (it ran on over {span} lines, "
                f"{first_line}–{first_line + span - 1}; each was read again on its own)",
            )
            continue
        _general_record(sink, next(csv.reader([raw]), []), line, raw)


def _feed_plain_lines(sink: RowSink, lines: list[str], base: int) -> None:
    """The hotter loop, for chunks without a quote: a CSV record is a line, its fields split at commas.

    Joining csv.reader's fields with tabs gives exactly ``line.replace(",", "\\t")``
    then, so the fast path needs no CSV parsing; other rows take the usual way.
    """
    plan = sink.plan
    fast = plan.fast
    suffix = sink.suffix
    fks = sink.fks
    has_fk = bool(fks.checks)
    fk_failure = fks.failure
    self_known, self_key = fks.self_known, fks.self_key
    width = plan.width
    out = sink.out
    for k, text in enumerate(lines):
        raw = text.rstrip("\r\n")
        if not raw:
            sink.blank_lines += 1  # a blank line is no record (csv.reader yields nothing for it)
            continue
        sink.rows_in += 1
        line = base + k
        s = raw.replace(",", "\t")
        if fast(s):
            if has_fk:
                row = s.split("\t")
                if fk_failure(row) is not None:
                    sink.accept(row, s, line, raw, "")
                    continue
                if self_known is not None:
                    self_known.add(row[self_key])  # type: ignore[index]
            out.append(f"{s}\t{line}{suffix}")
            continue
        row = raw.split(",")
        if len(row) != width:
            sink.reject(line, raw, f"expected {width} fields, got {len(row)}")
            continue
        sink.row(row, line, raw)
    sink.flush()
