"""Classification: what kind of failure an event is, which sources and entities it concerns.

Read from the failed step's typed outcome (``qudao.ledger.outcomes``), never from the
task id or the text of the error.
"""

from __future__ import annotations

from qudao.alerts.event import Event


def failure_kind(ev: Event) -> str:
    """extracts_missing | ingestion | dbt | quality_gate | publish | task | run | deadline.

    From the failed step's typed outcome (or its exception's kind), never from the task id.
    """
    if ev.type == "deadline":
        return "deadline"
    if ev.type == "run_failure":
        return "run"
    if ev.outcome is not None and ev.outcome.kind != "ok":
        return str(ev.outcome.kind)
    return ev.error_kind or "task"


def sources_of(ev: Event) -> list[str]:
    """The extract sources the failed step concerns (their owners are alerted too)."""
    return list(ev.outcome.sources) if ev.outcome is not None else []


def missing_of(ev: Event) -> tuple[list[str], str | None]:
    """The missing entities and the landing zone of an ``extracts_missing`` failure."""
    landing = ev.conf.get("landing")
    if failure_kind(ev) != "extracts_missing" or ev.outcome is None:
        return [], landing
    return list(ev.outcome.failed), (ev.outcome.look[0] if ev.outcome.look else landing)
