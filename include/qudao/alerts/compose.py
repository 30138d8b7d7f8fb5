"""From an Airflow callback context to a message people can act on.

:func:`~qudao.alerts.event.event_of` reads the callback's context into an event;
:func:`compose` turns the event, its classification and what the ledger says into an
:class:`~qudao.alerts.message.Alert`: what broke, where to look, what to do. The
pieces live in their own modules: ``event`` (model), ``classify``, ``message``
(rendering) and ``prose`` (the words).
"""

from __future__ import annotations

from typing import Any

from qudao.alerts.classify import failure_kind, missing_of, sources_of
from qudao.alerts.event import Event, event_of
from qudao.alerts.facts import NightFacts
from qudao.alerts.message import Alert
from qudao.alerts.prose import facts_lines, headline, indent, plural, sql_hint, todo
from qudao.ledger import runs

__all__ = ["Alert", "Event", "compose", "event_of", "failure_kind", "fallback_alert"]


def compose(ev: Event, facts: NightFacts, previous: dict[str, Any] | None = None) -> Alert:
    """The alert for ``ev`` (``previous``: the open failure a success recovers from)."""
    d = ev.business_date
    ds = d.isoformat() if d else "unknown date"
    rid = ev.run_id
    if ev.type == "run_success":
        return _success(ev, facts, previous)
    kind = failure_kind(ev)
    outcome = ev.outcome
    sources = sources_of(ev)
    missing, landing = missing_of(ev)
    title = headline(kind, sources, missing, facts)
    for f in facts.refused_files:
        if f["source"] not in sources:
            sources.append(f["source"])

    what = [f"DAG {ev.dag_id}, business date {ds}, run {rid}"]
    if ev.task_id:
        tries = f"try {ev.try_number}" if ev.try_number else "try ?"
        if ev.max_tries is not None and ev.try_number:
            tries += f" of {ev.max_tries + 1}"
        what.append(f"Task {ev.task_id} failed ({tries}, no retries left)")
    if ev.type == "run_failure":
        what.append(f"The DAG run failed (reason: {ev.reason or 'unknown'}).")
    if kind == "deadline":
        due = ev.deadline_time or (outcome.counts.get("deadline") if outcome is not None else None)
        what.append(f"The night was not published by the deadline {due or ''}".rstrip() + ".")
    if missing:
        what.append(f"Missing extracts: {', '.join(missing)} (landing zone {landing})")
    if ev.error and not missing:
        if kind == "quality_gate" and facts.failed_checks:
            what.append(f"Error: {ev.error.splitlines()[0]}")
        else:
            what += ["Error:", *indent(ev.error)]
    fact_what, fact_where = facts_lines(facts, rid, d)
    what += fact_what
    if kind != "deadline" and not facts.published:
        what += [
            "",
            f"Nothing was published for {ds}: marts still shows the last night that passed its checks.",
        ]

    where = []
    if ev.log_url:
        where.append(f"Task log: {ev.log_url}")
    if ev.log_path:
        where.append(f"Log file: {ev.log_path}")
    if ev.run_url and not ev.log_url:
        where.append(f"Airflow run: {ev.run_url}")
    where += fact_where
    where.append("Run steps: " + sql_hint(runs.where_to_look(rid)))
    where.append("Overview: qudao status")

    steps = todo(kind, ev, ds, missing, landing, sources)
    subject = f"[qudao] FAILED {ev.dag_id} {ds}: {title}"
    return Alert(
        kind=kind,
        status="failure",
        dag_id=ev.dag_id,
        run_id=rid,
        business_date=d,
        subject=subject,
        what=what,
        where=where,
        todo=steps,
        task_id=ev.task_id,
        try_number=ev.try_number,
        error=ev.error,
        sources=sources,
        details={
            "failed_checks": facts.failed_checks,
            "refused_files": facts.refused_files,
            "rejected_rows": facts.rejects,
            "missing_entities": missing,
            "landing": landing,
            "data_docs": facts.data_docs,
            "log_url": ev.log_url,
            "log_path": ev.log_path,
            "reason": ev.reason,
        },
    )


def _success(ev: Event, facts: NightFacts, previous: dict[str, Any] | None) -> Alert:
    d = ev.business_date
    ds = d.isoformat() if d else "unknown date"
    warns = [c for c in facts.failed_checks if c["severity"] != "error"]
    what = [
        f"DAG {ev.dag_id}, business date {ds}, run {ev.run_id}:"
        " the night passed its checks and was published."
    ]
    if previous:
        prev_d = previous.get("business_date")
        what.append(
            f"Recovered: the previous alert ({previous.get('kind')}, business date {prev_d}, run "
            f'{previous.get("run_id")}) is resolved — "{previous.get("subject")}".'
        )
        subject = f"[qudao] RECOVERED {ev.dag_id} {ds}: night published after the earlier failure"
        status, kind = "recovery", "recovery"
    else:
        subject = f"[qudao] published {ev.dag_id} {ds} with {plural(len(warns), 'warning')}"
        status, kind = "notice", "digest"
    fact_what, fact_where = facts_lines(facts, ev.run_id, d)
    what += fact_what
    where = ([f"Airflow run: {ev.run_url}"] if ev.run_url else []) + fact_where + ["Overview: qudao status"]
    todo = ["Review the warnings; they did not block publishing."] if warns else []
    return Alert(
        kind=kind,
        status=status,
        dag_id=ev.dag_id,
        run_id=ev.run_id,
        business_date=d,
        subject=subject,
        what=what,
        where=where,
        todo=todo,
        details={
            "failed_checks": facts.failed_checks,
            "recovered_from": previous,
            "data_docs": facts.data_docs,
        },
    )


def fallback_alert(ev: Event, problem: BaseException) -> Alert:
    """A bare alert for when composing the full one failed: people still learn what broke."""
    ds = ev.business_date.isoformat() if ev.business_date else "unknown date"
    what = [f"DAG {ev.dag_id}, business date {ds}, run {ev.run_id}, task {ev.task_id or '-'}: {ev.type}"]
    if ev.error:
        what += ["Error:", *indent(ev.error)]
    what.append(f"(the full alert could not be composed: {type(problem).__name__}: {problem})")
    status = "notice" if ev.type == "run_success" else "failure"
    return Alert(
        kind="task" if ev.type == "task_failure" else ev.type,
        status=status,
        dag_id=ev.dag_id,
        run_id=ev.run_id,
        business_date=ev.business_date,
        subject=f"[qudao] {status.upper()} {ev.dag_id} {ds}: {ev.task_id or ev.type}",
        what=what,
        where=[x for x in (ev.log_url, ev.log_path, ev.run_url) if x],
        todo=["Read the task log for the cause."],
        task_id=ev.task_id,
        try_number=ev.try_number,
        error=ev.error,
    )
