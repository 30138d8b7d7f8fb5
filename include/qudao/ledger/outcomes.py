"""Typed step outcomes: what a step of a night did, in one shape, written to ``ops.run_log``.

Every step returns or raises one :class:`StepOutcome`; alerts, ``qudao status`` and
``qudao run``'s summary read it back with :func:`latest_failure` / :func:`of_run`,
never from task ids or the text of an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:  # import-light: the exceptions DAG files reach carry an outcome
    import psycopg

#: what an outcome is about: ``ok`` for a step that did its job, else the kind of failure
Kind = Literal["ok", "extracts_missing", "ingestion", "quality_gate", "dbt", "publish", "deadline", "task"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class StepOutcome:
    """One step's outcome.

    ``sources``: the extract sources it concerns (whose owners an alert reaches);
    ``failed``: what failed (missing entities, failed checks, refused files, the error);
    ``counts``: the step's numbers; ``look``: where to look (paths, the landing zone first
    for missing extracts); ``status``: the ``ops.run_log`` status word.
    """

    step: str
    kind: str
    business_date: date | None
    status: str = "success"
    sources: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    counts: Mapping[str, Any] = field(default_factory=dict)
    look: tuple[str, ...] = ()
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown step outcome kind {self.kind!r} (one of {', '.join(KINDS)})")

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def line(self) -> str:
        """One line for people: ``<step> <status>: <kind> …``."""
        text = f"{self.step} {self.status}"
        if not self.ok:
            text += f": {self.kind}"
            if self.sources:
                text += f" ({', '.join(self.sources)})"
            if self.failed:
                more = f" … {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
                text += " — " + "; ".join(self.failed[:3]) + more
        return text


def record(conn: psycopg.Connection, run_id: str, outcome: StepOutcome) -> None:
    """Append the outcome as a row of ``ops.run_log``."""
    from qudao.ledger.migrate import ensure_current

    ensure_current(conn)
    conn.execute(
        "insert into ops.run_log (run_id, business_date, step, status, detail, kind, sources, failed, look,"
        " message) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            run_id,
            outcome.business_date,
            outcome.step,
            outcome.status,
            json.dumps(dict(outcome.counts), default=str, ensure_ascii=False),
            outcome.kind,
            json.dumps(list(outcome.sources), ensure_ascii=False),
            json.dumps(list(outcome.failed), ensure_ascii=False),
            json.dumps(list(outcome.look), ensure_ascii=False),
            outcome.message or None,
        ),
    )


_COLUMNS = "step, kind, business_date, status, sources, failed, detail, look, message"


def _outcome(row: tuple) -> StepOutcome:
    step, kind, business_date, status, sources, failed, counts, look, message = row
    return StepOutcome(
        step,
        kind,
        business_date,
        status,
        tuple(sources or ()),
        tuple(failed or ()),
        counts or {},
        tuple(look or ()),
        message or "",
    )


def latest_failure(conn: psycopg.Connection, run_id: str) -> StepOutcome | None:
    """The run's latest failed outcome (None when no step of it recorded one)."""
    row = conn.execute(
        f"select {_COLUMNS} from ops.run_log where run_id = %s and kind is not null and kind <> 'ok'"
        " order by logged_at desc limit 1",
        (run_id,),
    ).fetchone()
    return _outcome(row) if row else None


def of_run(conn: psycopg.Connection, run_id: str) -> list[StepOutcome]:
    """Every typed outcome of the run, in the order the steps recorded them."""
    rows = conn.execute(
        f"select {_COLUMNS} from ops.run_log where run_id = %s and kind is not null order by logged_at",
        (run_id,),
    ).fetchall()
    return [_outcome(r) for r in rows]
