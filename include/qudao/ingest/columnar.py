"""The columnar path: whole chunks of CSV lines checked as Arrow arrays and sent as binary COPY.

For a chunk with no quote character (a record is a line, its fields split at commas)
the checks of :mod:`qudao.ingest.validate`'s fast path run as vectorised masks over
the chunk's columns (``pyarrow.compute``): width, required values, enums, patterns,
ranges, shapes of numbers, dates and timestamps, and the foreign keys. Rows that pass
are cast to the raw table's types and encoded as PostgreSQL binary COPY (``pgpq``);
the server parses nothing. Rows that fail any mask take the row path
(:class:`~qudao.ingest.sink.RowSink`), which names the exact reason or normalises the
value (``" 5"`` → ``5``): a mask only ever sends a row the long way, never decides
a reject, so every reject reason is the row path's.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import date

import numpy as np
import pgpq
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from qudao.constants import BUSINESS_TZ_NAME
from qudao.contracts import Column
from qudao.ingest.formats.csv_files import CR, LF, CsvChunk
from qudao.ingest.sink import RowSink
from qudao.ingest.validate import DATE_RE, TIMESTAMP_RE, RowPlan, fast_value_regex

#: naive timestamps of years before this take the row path: the business time zone's
#: offset has been constant since 1991, before it PostgreSQL's and Arrow's rules may differ
FIXED_OFFSET_SINCE = "1992"
_OFFSET_AT_END = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_NEVER = "(?!)"

Mask = Callable[[pa.StringArray], pa.BooleanArray]
Cast = Callable[[pa.StringArray], pa.Array]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "int": pa.int32(),
    "numeric": pa.decimal128(14, 2),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


def _regex_mask(pattern: str) -> Mask:
    """Full match of ``pattern``; a pattern RE2 cannot compile sends every value the row path."""
    full = f"^(?:{pattern})$"
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), full)
    except pa.ArrowInvalid:
        return _all(False)
    return lambda col: pc.match_substring_regex(col, full)


def _all(value: bool) -> Mask:
    return lambda col: pa.array([value] * len(col), pa.bool_())


def _and(*masks: Mask) -> Mask:
    def both(col: pa.StringArray) -> pa.BooleanArray:
        out = masks[0](col)
        for m in masks[1:]:
            out = pc.and_(out, m(col))
        return out

    return both


def column_mask(col: Column, required: bool) -> Mask:
    """Which values the row path would take as they are, with the same meaning (vectorised)."""
    empty_ok = not required
    if col.type == "text":
        if col.enum:
            allowed = pa.array([*col.enum, *([""] if empty_ok else [])], pa.string())
            return lambda c: pc.is_in(c, value_set=allowed)
        masks: list[Mask] = []
        if required:
            masks.append(lambda c: pc.greater(pc.binary_length(c), 0))
        if col.pattern:
            pat = col.pattern.removeprefix("^").removesuffix("$")
            masks.append(_regex_mask(pat if required else f"(?:{pat})?"))
        return _and(*masks) if masks else _all(True)
    if col.type == "date":
        return _regex_mask(DATE_RE if required else f"(?:{DATE_RE})?")
    if col.type == "timestamptz":
        shape = _regex_mask(TIMESTAMP_RE if required else f"(?:{TIMESTAMP_RE})?")

        def recent_or_offset(c: pa.StringArray) -> pa.BooleanArray:
            aware = pc.match_substring_regex(c, _OFFSET_AT_END)
            recent = pc.greater_equal(pc.utf8_slice_codeunits(c, 0, 4), FIXED_OFFSET_SINCE)
            return pc.or_(pc.or_(aware, recent), pc.equal(pc.binary_length(c), 0))

        return _and(shape, recent_or_offset)
    if col.enum and col.type == "int":
        allowed = pa.array([*col.enum, *([""] if empty_ok else [])], pa.string())
        return lambda c: pc.is_in(c, value_set=allowed)
    regex = fast_value_regex(col, required)
    if _NEVER in regex:
        return _all(False)
    return _regex_mask(regex)


def _cast(col: Column) -> Cast:
    target = _ARROW_TYPES[col.type]
    if col.type == "text":
        return lambda c: c
    if col.type != "timestamptz":
        return lambda c: pc.cast(c, target)

    def timestamps(c: pa.StringArray) -> pa.Array:
        aware = pc.match_substring_regex(c, _OFFSET_AT_END)
        with_offset = pc.cast(pc.if_else(aware, c, None), target)
        naive = pc.cast(pc.if_else(aware, None, c), pa.timestamp("us"))
        local = pc.assume_timezone(naive, BUSINESS_TZ_NAME)
        return pc.if_else(aware, with_offset, pc.cast(local, target))

    return timestamps


#: a column is checked on its distinct values while a chunk has at most 1/this as many
DICTIONARY_SHARE = 4


def _worth_a_dictionary(col: Column) -> bool:
    """Is the column's check or cast costly enough to run it on distinct values? (Enums hash anyway.)"""
    return not col.enum and (col.type != "text" or bool(col.pattern))


class _NotPandas:
    """A meta path finder that fails the import of pandas in one thread (installed for a moment,
    see :func:`warm_up`); any other thread importing pandas meanwhile gets it as usual."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.partition(".")[0] == "pandas" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError("the loader hands pyarrow no pandas objects", name=name)


def warm_up() -> None:
    """Make pyarrow's one-off start-up cost now (the loader calls this in a thread while it hashes).

    pyarrow's lazy pandas shim imports pandas on the first conversion of a Python object
    (a scalar, a list): 1–5 s and ~60 MiB on a busy machine, for nothing, since the
    loader never hands pyarrow pandas objects. So the first conversion runs while the
    import of pandas fails; pyarrow notes "no pandas" and goes on. Whatever needs
    pandas through pyarrow later (``to_pandas``, ``from_pandas``) imports it then.
    """
    if "pandas" not in sys.modules:
        finder = _NotPandas()
        sys.meta_path.insert(0, finder)
        try:
            pa.scalar(0)
        finally:
            sys.meta_path.remove(finder)
    pa.scalar(0)


class ColumnarLoad:
    """One file's plain chunks on their way into one binary COPY stream."""

    def __init__(self, sink: RowSink, copy: psycopg.Copy, business_date: date, load_id: int):
        warm_up()  # done already when load_date started it
        plan: RowPlan = sink.plan
        self.sink = sink
        self.copy = copy
        self.width = plan.width
        keys = set(plan.entity.key)
        required = [c.required or c.name in keys for c in plan.columns]
        self.masks = [column_mask(c, r) for c, r in zip(plan.columns, required, strict=True)]
        self.casts = [_cast(c) for c in plan.columns]
        fields = [pa.field(c.name, _ARROW_TYPES[c.type]) for c in plan.columns]
        fields += [
            pa.field("_line_number", pa.int32(), nullable=False),
            pa.field("_business_date", pa.date32(), nullable=False),
            pa.field("_load_id", pa.int64(), nullable=False),
        ]
        self.schema = pa.schema(fields)
        self.targets = [f.name for f in fields]
        self.business_date = business_date
        self.load_id = load_id
        self.rows = 0
        self._date = pa.scalar(business_date, pa.date32())
        self._load = pa.scalar(load_id, pa.int64())
        self._encoder = pgpq.ArrowToPostgresBinaryEncoder(self.schema)
        self._known_sets: dict[int, tuple[int, pa.Array]] = {}
        #: columns whose checks and casts run on their distinct values (until a chunk shows
        #: they are mostly distinct): a day's dates, quantities, prices repeat
        self._by_dictionary = [_worth_a_dictionary(c) for c in plan.columns]
        #: columns where '' (null) can pass the mask: a required text column's never does
        self._may_be_empty = [
            not (r and c.type == "text") for c, r in zip(plan.columns, required, strict=True)
        ]
        self._invalid: list[int] = []  # physical lines (1-based in the chunk) of another width
        names = [f"c{j}" for j in range(self.width)]
        self._read_options = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 30)
        self._parse_options = pacsv.ParseOptions(
            delimiter=",",
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=self._other_width,
        )
        self._convert_options = pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=False,  # the chunk was decoded to str and encoded again
        )
        copy.write(self._encoder.write_header())

    def _other_width(self, row: pacsv.InvalidRow) -> str:
        """pyarrow's CSV reader met a line of another width: note it, leave it to the row path."""
        self._invalid.append(row.number)
        return "skip"

    def _known(self, k: int, known: set[str]) -> pa.Array:
        """The keys of foreign-key check ``k`` as an Arrow array (rebuilt when the set grew)."""
        cached = self._known_sets.get(k)
        if cached is None or cached[0] != len(known):
            cached = (len(known), pa.array([v for v in known if isinstance(v, str)], pa.string()))
            self._known_sets[k] = cached
        return cached[1]

    def feed(self, chunk: CsvChunk) -> None:
        """Check and send one chunk of quote-free lines."""
        sink = self.sink
        base = chunk.first_line
        data = chunk.data
        ends = chunk.line_ends
        n_lines = len(ends)
        starts = np.empty_like(ends)
        starts[:1] = 0
        starts[1:] = ends[:-1] + 1
        last = np.frombuffer(data, np.uint8)[ends]
        breaks = (last == LF) | (last == CR)  # the last line may have no line break
        breaks = breaks.astype(np.int64)
        crlf = np.flatnonzero((last == LF) & (ends > starts))
        breaks[crlf] += np.frombuffer(data, np.uint8)[ends[crlf] - 1] == CR
        lengths = ends - starts + 1 - breaks  # of each line without its line break
        self._invalid.clear()
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=self._read_options,
            parse_options=self._parse_options,
            convert_options=self._convert_options,
        )
        # table row i is physical line base + where[i]: lines of another width are left out
        # (reported to _invalid), a blank line is a row of empty values
        if self._invalid:
            where = np.delete(np.arange(n_lines), [k - 1 for k in self._invalid])
        else:
            where = np.arange(n_lines)
        blank_at = np.flatnonzero(lengths == 0).tolist()
        sink.blank_lines += len(blank_at)
        n = table.num_rows
        good = pa.array(np.isin(where, blank_at, invert=True) if blank_at else np.ones(n, np.bool_))
        columns: list[pa.Array] = []
        coded: list[tuple[pa.Array, pa.Array] | None] = []
        for j, mask in enumerate(self.masks):
            values = table.column(j).combine_chunks() if n else pa.array([], pa.string())
            columns.append(values)
            if self._by_dictionary[j] and n:
                encoded = pc.dictionary_encode(values)
                uniques, indices = encoded.dictionary, encoded.indices
                if len(uniques) * DICTIONARY_SHARE > n:
                    self._by_dictionary[j] = False  # mostly distinct values: evaluate them directly
                ok = pc.fill_null(mask(uniques), False)
                coded.append((pc.if_else(ok, uniques, None), indices))
                good = pc.and_(good, pc.take(ok, indices))
            else:
                coded.append(None)
                good = pc.and_(good, pc.fill_null(mask(values), False))
        fks = sink.fks
        for k, (idx, known, cond_idx, cond_val, _reason) in enumerate(fks.checks):
            values = columns[idx]
            fails = pc.and_(
                pc.greater(pc.binary_length(values), 0),
                pc.invert(pc.is_in(values, value_set=self._known(k, known))),
            )
            if cond_idx is not None:
                fails = pc.and_(fails, pc.equal(columns[cond_idx], cond_val))
            good = pc.and_(good, pc.invert(fails))
        good = pc.fill_null(good, False)
        n_good = pc.sum(good).as_py() or 0
        if n_good:
            self._send(columns, coded, good, where, base, n_good)
            if fks.self_known is not None:
                keys = columns[fks.self_key] if n_good == n else pc.filter(columns[fks.self_key], good)  # type: ignore[index]
                fks.self_known.update(k for k in keys.to_pylist() if k)
        failed = where[np.flatnonzero(~good.to_numpy(zero_copy_only=False))].tolist()
        rest = sorted([*failed, *(k - 1 for k in self._invalid)])
        blank = set(blank_at)
        rest = [k for k in rest if k not in blank]
        sink.rows_in += n_good + len(rest)
        width = self.width
        for k in rest:
            raw = data[starts[k] : starts[k] + lengths[k]].decode("utf-8")
            row = raw.split(",")
            if len(row) != width:
                sink.reject(base + k, raw, f"expected {width} fields, got {len(row)}")
                continue
            sink.row(row, base + k, raw)
        sink.flush()

    def _send(
        self,
        columns: list[pa.Array],
        coded: list[tuple[pa.Array, pa.Array] | None],
        good: pa.BooleanArray,
        where: np.ndarray,
        base: int,
        n: int,
    ) -> None:
        every = n == len(good)
        arrays = []
        for j, cast in enumerate(self.casts):
            pair = coded[j]
            if pair is not None:  # cast each distinct valid value once, then spread it
                uniques, indices = pair
                uniques = cast(pc.if_else(pc.equal(pc.binary_length(uniques), 0), None, uniques))
                arrays.append(pc.take(uniques, indices if every else pc.filter(indices, good)))
                continue
            kept = columns[j] if every else pc.filter(columns[j], good)
            if self._may_be_empty[j]:
                kept = pc.if_else(pc.equal(pc.binary_length(kept), 0), None, kept)  # '' is null
            arrays.append(cast(kept))
        rows = where if every else where[good.to_numpy(zero_copy_only=False)]
        arrays.append(pa.array((rows + base).astype(np.int32)))
        arrays.append(pa.repeat(self._date, n))
        arrays.append(pa.repeat(self._load, n))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self.copy.write(self._encoder.write_batch(batch))
        self.rows += n
        self.sink.rows_loaded += n

    def close(self) -> None:
        """End the binary stream (its trailer)."""
        self.copy.write(self._encoder.finish())
