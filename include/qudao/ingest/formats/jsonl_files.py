"""JSON Lines (plain or gzip): one object per line, decompressed on the fly within the expansion limits."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from upath import UPath

from qudao.contracts import Column, Entity
from qudao.ingest.errors import FileRefused
from qudao.ingest.expansion import Bounded, ExpansionLimits
from qudao.ingest.sink import RowSink, extra_json
from qudao.ingest.validate import RowError


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
            stream = Bounded(gunzip, path, path.stat().st_size, limits)  # type: ignore[assignment]
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


def feed_jsonl(sink: RowSink, entity: Entity, path: UPath, gz: bool) -> tuple[list[str], list[str]]:
    """Feed JSON Lines rows; return (extra keys seen, contract columns never seen)."""
    names = list(entity.column_names)
    cols = list(entity.columns)
    known = set(names)
    seen: set[str] = set()
    extras_seen: list[str] = []
    objects = 0
    first_other: JsonRow | None = None  # the first line that holds something else than an object
    for r in jsonl_rows(path, gz):
        if r.kind == "blank":
            sink.blank_lines += 1
            continue
        sink.rows_in += 1
        if r.obj is None:
            first_other = first_other or r
            sink.reject(r.line, r.raw, r.error or "not a JSON object")
            continue
        objects += 1
        obj = {str(k).strip().lower(): v for k, v in r.obj.items()}
        extra_keys = [k for k in obj if k not in known]
        extra = "\t"  # JSON Lines always target _extra; empty means null
        if extra_keys:
            try:
                extra = extra_json((k, obj[k]) for k in extra_keys)
            except RowError as exc:
                sink.reject(r.line, r.raw, str(exc))
                continue
            extras_seen.extend(k for k in extra_keys if k not in extras_seen)
        seen.update(obj)
        fields = [json_value(obj.get(n), c) for n, c in zip(names, cols, strict=True)]
        sink.row(fields, r.line, r.raw, extra)
    if first_other is not None and not objects:
        what = "not valid JSON" if first_other.kind == "invalid" else f"a JSON {first_other.kind}"
        raise FileRefused(
            f"{path.name}: unreadable: no line holds a JSON object (line {first_other.line} is {what}); "
            "JSON Lines carry one object per line"
        )
    never = [n for n in names if n not in seen] if sink.rows_in else []
    return extras_seen, never
