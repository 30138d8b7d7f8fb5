"""One pass over a delivered file's bytes: checksum, size, text encoding, physical lines.

Strict UTF-8 (with or without BOM) or GB18030 that looks like Chinese; lines are
counted on the bytes, independently of any parser, so the loader can account for
every line.
"""

from __future__ import annotations

import codecs
import hashlib
import queue
import re
import threading
from dataclasses import dataclass

from upath import UPath

from qudao.ingest.errors import FileRefused

CHUNK_BYTES = 1 << 20
LF, CR = 0x0A, 0x0D
_CRLF_WORD = CR | LF << 8  # b'\r\n' as a little-endian uint16
_BOM = codecs.BOM_UTF8


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
        import numpy as np  # counts bytes several times faster than bytes.count

        a = np.frombuffer(chunk, np.uint8)
        lf = int(np.count_nonzero(a == LF))
        joined = self._last == b"\r" and chunk[:1] == b"\n"  # a CRLF across two chunks
        if b"\r" in chunk:
            # CRLF pairs at even and at odd offsets, read as little-endian 16-bit words
            even = np.frombuffer(chunk, "<u2", len(chunk) // 2)
            odd = np.frombuffer(chunk, "<u2", (len(chunk) - 1) // 2, offset=1)
            crlf = int(np.count_nonzero(even == _CRLF_WORD)) + int(np.count_nonzero(odd == _CRLF_WORD))
            self.breaks += lf + int(np.count_nonzero(a == CR)) - crlf - joined
        else:
            self.breaks += lf - joined
        self._last = chunk[-1:]

    def lines(self, size: int) -> int:
        """Lines in all: breaks, plus a last line that has no break of its own."""
        return self.breaks + (size > 0 and self._last not in (b"\n", b"\r"))


class _Gb18030Plausibility:
    """Is text that decodes as GB18030 Chinese, or another legacy encoding that happens to decode?

    Shift-JIS, Big5 or EUC-KR bytes mostly decode to valid but rare GB18030 characters
    (outside GB2312's common hanzi and punctuation): Japanese kana land in GBK/3. Text
    where more than :data:`RARE_SHARE` of the non-ASCII characters are rare is refused.

    The verdict is taken on the first :data:`SAMPLE_CHARS` non-ASCII characters: that
    tells the language, and the reader's strict decode of the whole file (which names
    the line of a bad sequence) is the one full codec pass.
    """

    RARE_SHARE = 0.2
    MIN_RARE = 4  # a few rare characters (a partner's name) are normal
    SAMPLE_CHARS = 64 * 1024

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("gb18030")("strict")
        self.non_ascii = 0
        self.rare = 0
        self.decodes = True

    @property
    def settled(self) -> bool:
        """Has it seen enough (or a bad sequence), so the rest of the file need not be fed?"""
        return not self.decodes or self.non_ascii >= self.SAMPLE_CHARS

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.settled:
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


class _Digest:
    """sha256 of the chunks given to :meth:`update`, computed in a thread meanwhile.

    hashlib releases the GIL on large buffers, so the hash of one chunk runs while
    the prescan counts lines and checks the encoding of the next.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="qudao-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._sha.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def __enter__(self) -> _Digest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._chunks.put(None)
        self._thread.join()

    def hexdigest(self) -> str:
        """The digest (after the ``with`` block: every chunk hashed)."""
        return self._sha.hexdigest()


def prescan(path: UPath, text: bool) -> Prescan:
    """Hash the file and, for text files, find which of the accepted encodings it is in.

    Strict UTF-8 (a leading BOM stripped) is tried first, GB18030 otherwise, and GB18030
    text must look like Chinese (:class:`_Gb18030Plausibility`, on a prefix); a bad
    GB18030 sequence anywhere is named, with its line, by the reader's decode. NUL bytes
    mean a binary file. Lines are counted on the bytes.
    """
    digest = _Digest()
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8 = True
    has_nul = False
    first = b""
    lines = _LineCounter()
    gb: _Gb18030Plausibility | None = None
    sample = b""  # bytes from the first non-ASCII one on, to name the encoding they look like
    with digest, path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if not first:
                first = chunk[:4]
            if text:
                has_nul = has_nul or b"\x00" in chunk
                lines.feed(chunk)
                if utf8 and not (chunk.isascii() and not decoder.getstate()[0]):  # ASCII is UTF-8
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
                        gb = _Gb18030Plausibility()
                        gb.feed(_prefix(path, size))  # what UTF-8 had accepted so far
                if gb is not None and not gb.settled:
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
