"""Where a file's checked rows go: one COPY stream into raw, rejects spooled aside.

The COPY data is sent from a worker thread (:class:`CopySender`), so the reading and
checking of the next rows overlap with the server's work on the last ones.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import tempfile
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.copy import QueuedLibpqWriter

from qudao.ingest.foreign_keys import ForeignKeys
from qudao.ingest.validate import RowError, RowPlan, copy_escape, storable

#: rows buffered before a write to the COPY stream
BATCH_ROWS = 4096
#: blocks (128 KiB at most each) queued for the COPY sender thread: 8 MiB, more than one
#: chunk's binary COPY data (4 MiB of CSV), so the server works on one chunk while the next is read
COPY_QUEUE_BLOCKS = 64
#: the send buffer asked for on a connection's socket when it first COPYs, kept for the
#: connection's life (Linux doubles it; at most ``net.core.wmem_max``, 4 MiB by default): the
#: server's work for a few dozen milliseconds
COPY_SOCKET_BUFFER = 4 << 20


class CopySender(QueuedLibpqWriter):
    """Sends COPY data from a worker thread, so parsing and the server's work overlap.

    psycopg's queue holds up to 1024 blocks; a short one keeps memory flat when the
    server is the slower side. The sender needs the GIL for each block, and the main
    thread holds it for a while now and then (pgpq encodes a batch without releasing
    it): the socket's default send buffer (about 200 KiB, under 2 ms of the server's
    work) then ran dry and the server waited. A larger one keeps it busy meanwhile.
    """

    def __init__(self, cursor: psycopg.Cursor[Any]):
        super().__init__(cursor)
        self._queue = queue.Queue(maxsize=COPY_QUEUE_BLOCKS)
        _widen_send_buffer(cursor.connection.pgconn.socket)


def _widen_send_buffer(fd: int) -> None:
    """Ask for :data:`COPY_SOCKET_BUFFER` on the connection's socket (the kernel may grant less)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: closing it leaves libpq's open
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < COPY_SOCKET_BUFFER:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, COPY_SOCKET_BUFFER)
    except OSError:  # not a socket the platform lets us tune: the default buffer still works
        pass


class RowSink:
    """One file's rows on their way into one COPY stream (plus rejects spooled aside)."""

    def __init__(
        self,
        fks: ForeignKeys,
        plan: RowPlan,
        copy: psycopg.Copy,
        suffix: str,
        reject_prefix: str,
    ):
        self.plan = plan
        self.copy = copy
        self.suffix = suffix
        self.reject_prefix = reject_prefix
        self.fks = fks
        self.rows_in = 0
        self.rows_loaded = 0
        self.rows_rejected = 0
        #: physical lines that are no record of their own: blank ones, and the second and
        #: later lines of records that span lines (quoted line breaks in prose)
        self.blank_lines = 0
        self.continued_lines = 0
        self.rejects = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed after the rejects COPY
            max_size=8 << 20, mode="w+", encoding="utf-8"
        )
        self.pending: list[tuple[list[str], str, int, str, str]] = []  # waiting for a key later in the file
        self.out: list[str] = []

    # the general path (JSON Lines, XLSX, and CSV rows the fast path did not take)
    def row(self, fields: list[str], line: int, raw: str, extra: str = "") -> None:
        plan = self.plan
        joined = "\t".join(fields)
        if plan.fast(joined):
            values = fields
            line_text = joined
        else:
            try:
                if len(fields) != len(plan.columns):
                    raise RowError(f"expected {plan.width} fields, got {len(fields) + len(plan.extra)}")
                values = plan.convert(fields)
            except RowError as exc:
                self.reject(line, raw, str(exc))
                return
            line_text = "\t".join(values)
        self.accept(values, line_text, line, raw, extra)

    def accept(self, values: list[str], line_text: str, line: int, raw: str, extra: str) -> None:
        fks = self.fks
        if fks.checks:
            reason = fks.failure(values)
            if reason is not None:
                if fks.deferrable:
                    self.pending.append((values, line_text, line, raw, extra))
                else:
                    self.reject(line, raw, reason)
                return
            if fks.self_known is not None:
                fks.self_known.add(values[fks.self_key])  # type: ignore[index]
        self.out.append(f"{line_text}\t{line}{extra}{self.suffix}")
        if len(self.out) >= BATCH_ROWS:
            self.flush()

    def reject(self, line: int, raw: str, reason: str) -> None:
        self.rows_rejected += 1
        self.rejects.write(f"{self.reject_prefix}\t{line}\t{copy_escape(raw)}\t{copy_escape(reason)}\n")

    def flush(self) -> None:
        if self.out:
            self.rows_loaded += len(self.out)
            self.out.append("")
            self.copy.write("\n".join(self.out))
            self.out.clear()

    def finish(self) -> None:
        """Settle rows that waited for a key defined later in the same file (agents' parents)."""
        fks = self.fks
        pending, self.pending = self.pending, []
        settled = True
        while pending and settled:  # a parent may itself have waited for its own parent
            settled = False
            still = []
            for item in pending:
                values, line_text, line, _raw, extra = item
                if fks.failure(values) is None:
                    fks.self_known.add(values[fks.self_key])  # type: ignore[union-attr,index]
                    self.out.append(f"{line_text}\t{line}{extra}{self.suffix}")
                    settled = True
                else:
                    still.append(item)
            pending = still
        for values, _text, line, raw, _extra in pending:
            self.reject(line, raw, fks.failure(values) or "unknown foreign key")
        self.flush()


def extra_json(pairs: Iterable[tuple[str, Any]]) -> str:
    """The ``_extra`` COPY field (with its leading tab); :class:`RowError` if jsonb cannot hold it."""
    extra = dict(pairs)
    if not storable(extra):
        raise RowError(f"extra columns {', '.join(map(repr, extra))}: NUL, invalid Unicode or NaN")
    return "\t" + copy_escape(json.dumps(extra, ensure_ascii=False))
