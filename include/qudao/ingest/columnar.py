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

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
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
#: rows pgpq encodes per call: it holds the GIL meanwhile, which keeps the COPY sender
#: thread (:class:`qudao.ingest.sink.CopySender`) from refilling the socket
ENCODE_ROWS = 8192


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
        #: some column's check refuses '' (a key, a required column), so a blank line fails a check
        empty = pa.array([""], pa.string())
        self._empty_fails = any(not pc.fill_null(m(empty), False)[0].as_py() for m in self.masks)
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
        self._as_binary = pacsv.ConvertOptions(  # for a GB18030 chunk's bytes
            column_types=dict.fromkeys(names, pa.binary()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        self._check_utf8 = pacsv.ConvertOptions(  # for chunks read as bytes
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=True,
        )
        copy.write(self._encoder.write_header())

    def _other_width(self, row: pacsv.InvalidRow) -> str:
        """pyarrow's CSV reader met a line of another width: note it, leave it to the row path."""
        self._invalid.append(row.number)
        return "skip"

    def _known(self, k: int, known: set[str]) -> pa.Array:
        """The keys of foreign-key check ``k`` and '' as an Arrow array (rebuilt when the set grew)."""
        cached = self._known_sets.get(k)
        if cached is None or cached[0] != len(known):
            keys = [v for v in known if isinstance(v, str)]
            cached = (len(known), pa.array([*keys, ""], pa.string()))  # '' is null: no key to check
            self._known_sets[k] = cached
        return cached[1]

    def feed(self, chunk: CsvChunk) -> None:
        """Check and send one chunk of quote-free lines.

        pyarrow's reader splits lines as a text reader does (LF, CRLF, a lone CR) and keeps
        a blank line as a row of empty values, so table row i is the chunk's physical line i
        unless it left out lines of another width (:meth:`_other_width` notes them). The
        chunk's line breaks are looked for in its bytes (:attr:`CsvChunk.line_ends`) only
        when some line takes the row path: for its raw text, and to tell a blank line.
        """
        sink = self.sink
        self._invalid.clear()
        gb = chunk.codec != "utf-8"  # GB18030 bytes: split as bytes, the values transcoded (_utf8)
        # UTF-8 bytes as read from the file: pyarrow checks them
        options = self._as_binary if gb else self._check_utf8 if chunk.as_read else self._convert_options
        try:
            with _quiet_errors_of(self._other_width) if gb else contextlib.nullcontext():
                table = pacsv.read_csv(
                    pa.py_buffer(chunk.data),
                    read_options=self._read_options,
                    parse_options=self._parse_options,
                    convert_options=options,
                )
        except pa.ArrowInvalid:
            if gb:  # pyarrow reads a line of another width as UTF-8 for its handler: here, not
                whole = CsvChunk(chunk.first_line, chunk.text, quoted=False)
                self.feed(whole)
                chunk.counted_lines = whole.line_count
                return
            if chunk.as_read:
                chunk.text  # noqa: B018 - bytes that are not UTF-8: refused, naming the line
            raise
        n = table.num_rows
        invalid = [k - 1 for k in self._invalid]  # 0-based lines of another width
        chunk.counted_lines = n + len(invalid)
        columns = [_one_array(table.column(j)) for j in range(self.width)]
        if gb:
            columns = [_utf8(c, chunk.codec) for c in columns]
        passing: list[pa.BooleanArray] = []  # for each check some row fails: the rows that pass it
        coded: list[tuple[pa.Array, pa.Array] | None] = []
        for j, mask in enumerate(self.masks):
            values = columns[j]
            if not n:
                coded.append(None)
            elif self._by_dictionary[j]:
                encoded = pc.dictionary_encode(values)
                uniques, indices = encoded.dictionary, encoded.indices
                if len(uniques) * DICTIONARY_SHARE > n:
                    self._by_dictionary[j] = False  # mostly distinct values: evaluate them directly
                ok = _unless_all(mask(uniques))
                if ok is None:
                    coded.append((uniques, indices))
                else:
                    coded.append((pc.if_else(ok, uniques, None), indices))
                    passing.append(pc.take(ok, indices))
            else:
                coded.append(None)
                ok = _unless_all(mask(values))
                if ok is not None:
                    passing.append(ok)
        if n and not self._empty_fails:  # no check refuses '': keep a blank line off this path
            nonblank = pc.greater(pc.binary_length(columns[0]), 0)
            for c in columns[1:]:
                nonblank = pc.or_(nonblank, pc.greater(pc.binary_length(c), 0))
            if (ok := _unless_all(nonblank)) is not None:
                passing.append(ok)
        fks = sink.fks
        for k, (idx, known, cond_idx, cond_val, _reason) in enumerate(fks.checks if n else ()):
            ok = pc.is_in(columns[idx], value_set=self._known(k, known))  # '' (null) is in the set
            if cond_idx is not None:
                ok = pc.or_(ok, pc.not_equal(columns[cond_idx], cond_val))
            if (ok := _unless_all(ok)) is not None:
                passing.append(ok)
        good: pa.BooleanArray | None = None  # None: every row
        if passing:
            good = passing[0]
            for m in passing[1:]:
                good = pc.and_(good, m)
        n_good = n if good is None else pc.sum(good).as_py() or 0
        where = None if not invalid else np.delete(np.arange(chunk.counted_lines), invalid)
        if n_good:
            self._send(columns, coded, good, where, chunk.first_line, n_good)
            if fks.self_known is not None:
                keys = columns[fks.self_key]  # type: ignore[index]
                keys = keys if good is None else keys.filter(good)
                fks.self_known.update(k for k in keys.to_pylist() if k)
        if n_good == n and not invalid:
            sink.rows_in += n
            return
        rest = np.empty(0, np.int64) if good is None else np.flatnonzero(~good.to_numpy(zero_copy_only=False))
        if where is not None:
            rest = np.sort(np.concatenate([where[rest], np.asarray(invalid, np.int64)]))
        sink.rows_in += n_good
        self._row_path(chunk, rest.tolist())

    def _row_path(self, chunk: CsvChunk, rest: list[int]) -> None:
        """Lines ``rest`` of the chunk (0-based) take the row path; a blank one is counted as such."""
        sink = self.sink
        base = chunk.first_line
        data = chunk.data
        ends = chunk.line_ends
        if len(ends) != chunk.counted_lines:  # pyarrow's lines are the bytes' lines
            raise AssertionError(
                f"{sink.plan.entity.qualified}, line {base} on: pyarrow read {chunk.counted_lines} lines, "
                f"the bytes hold {len(ends)}"
            )
        width = self.width
        for k in rest:
            start = int(ends[k - 1]) + 1 if k else 0
            end = int(ends[k]) + 1
            last = data[end - 1]
            if last == LF:
                end -= 2 if end - 1 > start and data[end - 2] == CR else 1
            elif last == CR:
                end -= 1
            if end == start:
                sink.blank_lines += 1
                continue
            sink.rows_in += 1
            try:
                raw = data[start:end].decode(chunk.codec)
            except UnicodeDecodeError:
                chunk.text  # noqa: B018 - refused, naming the line
                raise
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
        good: pa.BooleanArray | None,
        where: np.ndarray | None,
        base: int,
        n: int,
    ) -> None:
        arrays = []
        for j, cast in enumerate(self.casts):
            pair = coded[j]
            if pair is not None:  # cast each distinct valid value once, then spread it
                uniques, indices = pair
                uniques = cast(pc.if_else(pc.equal(pc.binary_length(uniques), 0), None, uniques))
                arrays.append(pc.take(uniques, indices if good is None else indices.filter(good)))
                continue
            kept = columns[j] if good is None else columns[j].filter(good)
            if self._may_be_empty[j]:
                kept = _empty_as_null(kept)
            arrays.append(cast(kept))
        if good is None:
            rows = np.arange(len(columns[0]), dtype=np.int32) if where is None else where
        else:
            kept_rows = np.flatnonzero(good.to_numpy(zero_copy_only=False))
            rows = kept_rows if where is None else where[kept_rows]
        arrays.append(pa.array((rows + base).astype(np.int32, copy=False)))
        arrays.append(pa.repeat(self._date, n))
        arrays.append(pa.repeat(self._load, n))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        for start in range(0, n, ENCODE_ROWS):  # pgpq holds the GIL while it encodes: briefly
            self.copy.write(self._encoder.write_batch(batch.slice(start, ENCODE_ROWS)))
        self.rows += n
        self.sink.rows_loaded += n

    def close(self) -> None:
        """End the binary stream (its trailer)."""
        self.copy.write(self._encoder.finish())


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks() if column.num_chunks else pa.array([], column.type)


def _unless_all(ok: pa.BooleanArray) -> pa.BooleanArray | None:
    """``ok`` with null as False, or None when every value is True."""
    if ok.null_count:
        ok = pc.fill_null(ok, False)
    return None if ok.false_count == 0 else ok


def _empty_as_null(values: pa.StringArray) -> pa.StringArray:
    """'' as null (COPY's NULL ''), without copying the strings."""
    nonempty = pc.greater(pc.binary_length(values), 0)
    if nonempty.false_count == 0:
        return values
    if values.offset or values.null_count or nonempty.offset:
        return pc.if_else(nonempty, values, None)
    return pa.Array.from_buffers(values.type, len(values), [nonempty.buffers()[1], *values.buffers()[1:]])


def _utf8(values: pa.BinaryArray, codec: str) -> pa.StringArray:
    """A column of a GB18030 chunk (checked by the reader) as UTF-8 strings.

    An ASCII column is UTF-8 as it is; otherwise its distinct values are decoded, all in
    one decode (:func:`_transcoded`), and spread back.
    """
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    size = int(offsets[-1] - offsets[0])
    if not size or np.frombuffer(values.buffers()[2], np.uint8, size, int(offsets[0])).max() < 0x80:
        return values.view(pa.string())
    encoded = pc.dictionary_encode(values)
    return pc.take(_transcoded(encoded.dictionary, codec), encoded.indices)


def _transcoded(values: pa.BinaryArray, codec: str) -> pa.StringArray:
    """``values`` decoded from ``codec`` into UTF-8 strings, with one decode for them all.

    No value holds a line break (pyarrow split the lines at them), so the values are
    joined with LF, decoded, encoded in UTF-8 and cut at the LFs again: numpy, no Python
    string per value.
    """
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], np.int32, n + 1, values.offset * 4)
    first = int(offsets[0])
    body = values.buffers()[2]
    raw = np.frombuffer(body, np.uint8, int(offsets[-1]) - first, first) if body else np.empty(0, np.uint8)
    joined = np.insert(raw, offsets[1:] - first, LF)  # an LF after each value
    utf8 = np.frombuffer(joined.tobytes().decode(codec).encode("utf-8"), np.uint8)
    ends = np.flatnonzero(utf8 == LF)
    new_offsets = np.empty(n + 1, np.int32)
    new_offsets[0] = 0
    new_offsets[1:] = ends - np.arange(n)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(np.delete(utf8, ends))]
    )


@contextlib.contextmanager
def _quiet_errors_of(handler: Callable[..., object]) -> Iterator[None]:
    """Keep ``handler``'s exceptions that pyarrow reports as unraisable off stderr meanwhile.

    pyarrow decodes an invalid row's text as UTF-8 before it calls the handler; for a
    GB18030 line with non-ASCII bytes that fails, is reported as unraisable, and the
    read fails (ArrowInvalid), which :meth:`ColumnarLoad.feed` handles.
    """
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if unraisable.object != handler:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
