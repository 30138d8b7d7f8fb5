"""The alert ledger's stand-in on this machine when the warehouse cannot be reached.

``ops.alert_log`` dedupes alerts, but an alert about an unreachable warehouse cannot
use it. Then the claims go to ``<qudao home>/alerts/ledger.jsonl`` (one JSON object
per line, appended under an ``flock``), so one failed night still sends one alert
from the processes of this machine (``qudao run``, a local executor).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def ledger_path() -> Path:
    from qudao.config import settings

    return settings().home / "alerts" / "ledger.jsonl"


@contextlib.contextmanager
def _entries(path: Path) -> Iterator[tuple[list[dict[str, Any]], Any]]:
    """The ledger's entries and its file, locked for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            entries = []
            for line in f:
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
            yield entries, f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def claim(key: str, record: dict[str, Any], path: Path | None = None) -> bool:
    """Record the alert under ``key``; False when ``key`` was already claimed here."""
    with _entries(path or ledger_path()) as (entries, f):
        if any(e.get("dedupe_key") == key for e in entries):
            return False
        entry = {
            "dedupe_key": key,
            "dag_id": record["dag_id"],
            "run_id": record["run_id"],
            "status": record["status"],
            "clear_number": record.get("clear_number", 0),
            "created_at": datetime.now(UTC).isoformat(),
        }
        f.write(json.dumps(entry) + "\n")
        f.flush()
    return True


def failure_alerted(
    dag_id: str, run_id: str, clear_number: int | None = None, path: Path | None = None
) -> bool:
    """Whether a failure alert for this run was claimed here (since its clear ``clear_number``)."""
    with _entries(path or ledger_path()) as (entries, _):
        return any(
            (e.get("dag_id"), e.get("run_id"), e.get("status")) == (dag_id, run_id, "failure")
            and (clear_number is None or int(e.get("clear_number") or 0) >= clear_number)
            for e in entries
        )
