"""Turn one delivered row into a line of PostgreSQL ``COPY`` text, or a reason to refuse it.

A :class:`RowPlan` is compiled once per file from the entity's contract and the
file's header order. It has two paths:

* a **fast path**: the row's fields joined by tabs are matched against one
  precompiled regular expression that accepts only values that are valid *and*
  already in the form PostgreSQL reads them (no escaping needed). A match means
  the joined string is the COPY line as it is. Whatever it accepts the slow path
  accepts too, with the same meaning.
* a **slow path** (:meth:`RowPlan.convert`): value by value, authoritative; it
  normalises what it accepts (``" 5"`` → ``5``, ``12.345`` → ``12.35``, a
  timestamp without offset → ``+08:00``) and names every fault of the row.

COPY runs with ``NULL ''``: an empty field is null, as the contract says.
Timestamps without an offset are read by PostgreSQL in the session time zone,
which the loader sets to Asia/Shanghai.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from qudao.constants import SHANGHAI
from qudao.contracts import Column, Entity

INT32 = (-(2**31), 2**31 - 1)
NUMERIC_LIMIT = Decimal(10) ** 12  # numeric(14, 2): 12 digits before the point
#: the largest UTC offset PostgreSQL reads in a timestamptz
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
_CENT = Decimal("0.01")

# --- fast-path building blocks (all ASCII; none can match a tab, backslash or line break)
_YEAR = r"[1-9][0-9]{3}"
_LEAP = r"(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
DATE_RE = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP}-02-29)"
)
_TIME_RE = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_OFFSET_RE = r"(?:Z|[+-](?:0[0-9]|1[0-4])(?::?[0-5][0-9])?)"
TIMESTAMP_RE = rf"{DATE_RE}[T ]{_TIME_RE}{_OFFSET_RE}?"
# NUL and lone surrogates (possible from JSON escapes) cannot reach PostgreSQL text: slow path
_TEXT_CHAR = r"[^\t\\\n\r\x00" + "\ud800-\udfff]"
_NEVER = r"(?!)"

# --- slow-path shapes
_INT_SHAPE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUM_SHAPE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_TS_SHAPE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class RowError(ValueError):
    """A row the contract refuses; the message is the reason stored with the reject."""


def storable(value: object) -> bool:
    """False when a (JSON) value holds what jsonb cannot store: NUL, a lone surrogate, NaN or infinity."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and not _SURROGATE.search(value)
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v) for v in value)
    return True


def copy_escape(value: str) -> str:
    """Escape a text value for COPY text format (backslash, tab, CR, LF)."""
    return value.translate(_COPY_ESCAPES)


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


# ----------------------------------------------------------------------------- fast path
def _fast_int(col: Column) -> str:
    if col.enum:
        return "(?:" + "|".join(re.escape(v) for v in col.enum) + ")"
    lo = col.min_value
    hi = col.max_value
    if lo is not None and col.exclusive_min:
        lo = lo + 1
    if hi is None:
        if lo is None:
            return r"-?[0-9]{1,9}"
        if lo == 0:
            return r"[0-9]{1,9}"
        if lo == 1:
            return r"0*[1-9][0-9]{0,8}"
        return _NEVER
    if lo is not None and 0 <= lo <= hi <= 9 and lo == int(lo) and hi == int(hi):
        return f"0*[{int(lo)}-{int(hi)}]"
    return _NEVER


def _fast_numeric(col: Column) -> str:
    body = r"[0-9]{1,12}(?:\.[0-9]{1,2})?"
    if col.max_value is not None or (col.min_value is not None and col.min_value != 0):
        return _NEVER
    return body if col.min_value == 0 else "-?" + body


_UNSAFE_PATTERN = re.compile(r"\.|\\[sSWDB]|\[\^")


def _fast_text(col: Column) -> str:
    if col.enum:
        if any(re.search(r"[\t\\\n\r]", v) for v in col.enum):
            return _NEVER
        return "(?:" + "|".join(re.escape(v) for v in col.enum) + ")"
    if col.pattern:
        pat = col.pattern.removeprefix("^").removesuffix("$")
        if _UNSAFE_PATTERN.search(pat):
            return _NEVER
        return rf"(?=(?:{pat})(?:\t|$)){_TEXT_CHAR}*"
    return _TEXT_CHAR + ("+" if col.required else "*")


def fast_value_regex(col: Column, required: bool) -> str:
    """Regex (no anchors) for a value of ``col`` that COPY can take verbatim."""
    body = {
        "text": _fast_text,
        "int": _fast_int,
        "numeric": _fast_numeric,
        "date": lambda c: DATE_RE,
        "timestamptz": lambda c: TIMESTAMP_RE,
    }[col.type](col)
    if body == _NEVER:
        return _NEVER
    if required:
        return f"(?=[^\\t]){body}" if col.type == "text" and not col.enum else body
    return f"(?:{body})?" if col.type != "text" or col.enum or col.pattern else body


# ----------------------------------------------------------------------------- slow path
Converter = Callable[[str], str]


def _range_check(col: Column, number: int | Decimal, shown: str) -> None:
    if col.min_value is not None:
        if col.exclusive_min and number <= col.min_value:
            raise RowError(f"{col.name}: must be > {col.min_value:g} (got {shown})")
        if number < col.min_value:
            raise RowError(f"{col.name}: must be >= {col.min_value:g} (got {shown})")
    if col.max_value is not None and number > col.max_value:
        raise RowError(f"{col.name}: must be <= {col.max_value:g} (got {shown})")


def _converter(col: Column, required: bool, key: bool = False) -> Converter:
    name = col.name
    free_text = col.prose and not key
    pattern = re.compile(col.pattern) if col.pattern else None
    enum = frozenset(col.enum) if col.enum else None

    def empty() -> str:
        if required:
            raise RowError(f"{name}: required value missing")
        return ""

    if col.type == "text":

        def text(v: str) -> str:
            if v == "":
                return empty()
            if "\x00" in v:
                raise RowError(f"{name}: contains a NUL character")
            if _SURROGATE.search(v):
                raise RowError(f"{name}: not valid Unicode (lone surrogate) ({_short(v)})")
            if not free_text and ("\n" in v or "\r" in v):
                raise RowError(f"{name}: line break in a {'key' if key else 'code'} value ({_short(v)})")
            if enum is not None and v not in enum:
                raise RowError(f"{name}: {_short(v)} not one of {', '.join(col.enum or ())}")
            if pattern is not None and not pattern.search(v):
                raise RowError(f"{name}: {_short(v)} does not match {col.pattern}")
            return copy_escape(v)

        return text

    if col.type == "int":

        def integer(v: str) -> str:
            s = v.strip()
            if s == "":
                return empty()
            if not _INT_SHAPE.fullmatch(s):
                raise RowError(f"{name}: not an integer ({_short(v)})")
            n = int(s)
            if not INT32[0] <= n <= INT32[1]:
                raise RowError(f"{name}: integer out of range ({_short(v)})")
            _range_check(col, n, _short(v))
            if enum is not None and str(n) not in enum:
                raise RowError(f"{name}: {_short(v)} not one of {', '.join(col.enum or ())}")
            return str(n)

        return integer

    if col.type == "numeric":

        def numeric(v: str) -> str:
            s = v.strip()
            if s == "":
                return empty()
            if not _NUM_SHAPE.fullmatch(s):
                raise RowError(f"{name}: not a number ({_short(v)})")
            try:
                d = Decimal(s).quantize(_CENT, rounding=ROUND_HALF_UP)
            except InvalidOperation as exc:
                raise RowError(f"{name}: not a number ({_short(v)})") from exc
            if abs(d) >= NUMERIC_LIMIT:
                raise RowError(f"{name}: number out of range ({_short(v)})")
            _range_check(col, d, _short(v))
            return str(d)

        return numeric

    if col.type == "date":

        def date_(v: str) -> str:
            s = v.strip()
            if s == "":
                return empty()
            if not _DATE_SHAPE.fullmatch(s):
                raise RowError(f"{name}: not a date YYYY-MM-DD ({_short(v)})")
            try:
                d = date.fromisoformat(s)
            except ValueError as exc:
                raise RowError(f"{name}: not a valid date ({_short(v)})") from exc
            return d.isoformat()

        return date_

    def timestamp(v: str) -> str:
        s = v.strip()
        if s == "":
            return empty()
        if not _TS_SHAPE.fullmatch(s):
            raise RowError(f"{name}: not an ISO 8601 timestamp ({_short(v)})")
        try:
            ts = datetime.fromisoformat(s)
        except ValueError as exc:
            raise RowError(f"{name}: not a valid timestamp ({_short(v)})") from exc
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=SHANGHAI)
        offset = ts.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise RowError(f"{name}: UTC offset out of range, PostgreSQL accepts ±15:59 ({_short(v)})")
        return ts.isoformat()

    return timestamp


# ----------------------------------------------------------------------------- the plan
class RowPlan:
    """How to check and convert the rows of one file with a given header.

    ``columns`` are the contract columns present in the file, in file order;
    ``field_index[i]`` is where column ``i`` sits in a delivered row; ``extra``
    lists (index, name) of columns the contract does not know.
    """

    def __init__(self, entity: Entity, header: Sequence[str]):
        self.entity = entity
        self.header = list(header)
        known = set(entity.column_names)
        self.field_index: list[int] = [i for i, h in enumerate(header) if h in known]
        self.columns: list[Column] = [entity.column(header[i]) for i in self.field_index]
        self.extra: list[tuple[int, str]] = [(i, h) for i, h in enumerate(header) if h not in known]
        self.width = len(header)
        self.column_names = [c.name for c in self.columns]
        keys = set(entity.key)
        required = [c.required or c.name in keys for c in self.columns]
        self.converters: list[Converter] = [
            _converter(c, r, c.name in keys) for c, r in zip(self.columns, required, strict=True)
        ]
        #: positions (in the projected row) where a line break can be a value, not a broken record
        self.prose = [c.prose and c.name not in keys for c in self.columns]
        regex = r"\t".join(fast_value_regex(c, r) for c, r in zip(self.columns, required, strict=True))
        self.fast: Callable[[str], re.Match[str] | None] = re.compile(regex, re.ASCII | re.DOTALL).fullmatch
        self.projected = bool(self.extra) or self.field_index != list(range(self.width))

    def position(self, column: str) -> int | None:
        """Index of ``column`` among :attr:`columns` (the projected row), None if absent."""
        try:
            return self.column_names.index(column)
        except ValueError:
            return None

    def convert(self, fields: Sequence[str]) -> list[str]:
        """Slow path: COPY text values of the contract columns, or :class:`RowError` naming all faults."""
        out: list[str] = []
        errors: list[str] = []
        for conv, v in zip(self.converters, fields, strict=True):
            try:
                out.append(conv(v))
            except RowError as exc:
                errors.append(str(exc))
        if errors:
            raise RowError("; ".join(errors))
        return out
