"""From an Airflow callback context to a message people can act on.

:func:`event_of` reads the context of any qudao callback (task failure, DAG run
failure or success, missed deadline); :func:`compose` turns the event and what the
ops tables say into an :class:`Alert`: what broke, where to look, what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from qudao.alerts.facts import NightFacts
from qudao.ledger import gates, manifest, runs


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for dicts, ``obj.name`` otherwise; ``default`` when absent or failing."""
    if obj is None:
        return default
    try:
        if isinstance(obj, dict):
            return obj.get(name, default)
        value = getattr(obj, name, default)
        return default if value is None else value
    except Exception:  # lazy proxies and pydantic models may raise on access
        return default


@dataclass
class Event:
    """The facts of one callback, independent of where Airflow ran it."""

    type: str  # task_failure | run_failure | run_success | deadline
    dag_id: str
    run_id: str
    task_id: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    map_index: int = -1
    error: str | None = None
    error_type: str | None = None
    reason: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    logical_date: Any = None
    log_url: str | None = None
    log_path: str | None = None
    run_url: str | None = None
    deadline_time: str | None = None
    business_date: date | None = None
    #: how often the run was cleared (re-run in part) before this event: one failure alert per value
    clear_number: int = 0
    #: the failed step's typed outcome (``qudao.ledger.outcomes.StepOutcome``): from the exception,
    #: else from the ledger (the notifier reads it)
    outcome: Any = None
    #: what the exception says it is about (``kind`` of a ``qudao.orchestration.failures`` error)
    error_kind: str | None = None


def _airflow_conf(section: str, key: str) -> str | None:
    try:
        from airflow.sdk.configuration import conf

        return conf.get(section, key, fallback=None)
    except Exception:
        return None


def event_of(context: dict[str, Any]) -> Event:
    """Read the callback context (real Airflow context or an equivalent dict)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    exc = context.get("exception")
    if "deadline" in context:
        etype = "deadline"
    elif "reason" in context:
        etype = "run_success" if context.get("reason") == "success" else "run_failure"
    else:
        etype = "task_failure"
    dag_id = _get(dag, "dag_id") or _get(dag_run, "dag_id") or _get(ti, "dag_id") or "unknown_dag"
    run_id = context.get("run_id") or _get(dag_run, "run_id") or _get(ti, "run_id") or "unknown_run"
    conf = _get(dag_run, "conf") or {}
    ev = Event(
        type=etype,
        dag_id=str(dag_id),
        run_id=str(run_id),
        conf=dict(conf) if isinstance(conf, dict) else {},
        logical_date=context.get("logical_date") or _get(dag_run, "logical_date"),
        reason=context.get("reason"),
        deadline_time=str(_get(context.get("deadline"), "deadline_time") or "") or None,
        clear_number=_clear_number(dag_run),
    )
    if ti is not None and etype in ("task_failure", "run_failure"):
        ev.task_id = _get(ti, "task_id")
        ev.try_number = _get(ti, "try_number")
        ev.max_tries = _get(ti, "max_tries")
        ev.map_index = _get(ti, "map_index", -1)
        ev.log_url = _get(ti, "log_url")
        ev.log_path = _log_path(ev)
    if exc is not None:
        ev.error = str(exc).strip() or repr(exc)
        ev.error_type = type(exc).__name__ if isinstance(exc, BaseException) else None
        ev.outcome = getattr(exc, "outcome", None)
        kind = getattr(exc, "kind", None)
        ev.error_kind = kind if isinstance(kind, str) else None
    base = _airflow_conf("api", "base_url")
    if base:
        ev.run_url = f"{base.rstrip('/')}/dags/{ev.dag_id}/runs/{ev.run_id}"
    ev.business_date = _business_date(ev)
    return ev


def _clear_number(dag_run: Any) -> int:
    try:
        return int(_get(dag_run, "clear_number", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _log_path(ev: Event) -> str | None:
    folder = _airflow_conf("logging", "base_log_folder")
    if not folder or not ev.task_id:
        return None
    mapped = f"map_index={ev.map_index}/" if ev.map_index is not None and ev.map_index >= 0 else ""
    return (
        f"{folder.rstrip('/')}/dag_id={ev.dag_id}/run_id={ev.run_id}/task_id={ev.task_id}/"
        f"{mapped}attempt={ev.try_number or 1}.log"
    )


def _business_date(ev: Event) -> date | None:
    if ev.conf.get("business_date"):
        try:
            return date.fromisoformat(str(ev.conf["business_date"]))
        except ValueError:
            pass
    if ev.outcome is not None and ev.outcome.business_date is not None:
        return ev.outcome.business_date
    if ev.logical_date is not None:
        try:
            from qudao.business_day import business_date_of

            ld = ev.logical_date
            if isinstance(ld, str):
                ld = datetime.fromisoformat(ld.replace("Z", "+00:00"))
            return business_date_of(None, ld)
        except Exception:
            return None
    return None


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


@dataclass
class Alert:
    """One message: rendered as e-mail text, Slack-compatible JSON and a ledger row."""

    kind: str
    status: str  # failure | recovery | notice
    dag_id: str
    run_id: str
    business_date: date | None
    subject: str
    what: list[str]
    where: list[str]
    todo: list[str]
    task_id: str | None = None
    try_number: int | None = None
    error: str | None = None
    sources: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str = ""
    #: the run's clear number when the alert went out (see :class:`Event`)
    clear_number: int = 0

    def body(self) -> str:
        """Plain-text body (e-mail, log file, task log)."""
        out = [self.subject, "", "What happened", *[f"  {x}" if x else "" for x in self.what]]
        if self.where:
            out += ["", "Where to look", *[f"  {x}" for x in self.where]]
        if self.todo:
            out += ["", "What to do", *[f"  {i}. {x}" for i, x in enumerate(self.todo, 1)]]
        return "\n".join(out) + "\n"

    def record(self) -> dict[str, Any]:
        """JSON-ready structured form (webhook fields, ops.alert_log, alerts.log)."""
        d = asdict(self)
        d["business_date"] = self.business_date.isoformat() if self.business_date else None
        return d

    def webhook_payload(self) -> dict[str, Any]:
        """Slack-compatible: ``text`` is the whole message; ``qudao`` carries the structured fields."""
        return {"text": self.body(), "qudao": self.record()}


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _indent(text: str) -> list[str]:
    return ["    " + line for line in text.splitlines() if line.strip()]


def _check_line(c: dict[str, Any]) -> str:
    mark = "FAIL" if c["severity"] == "error" else "WARN"
    line = f"{mark} [{c['severity']}] {c['suite']} :: {c['check']}"
    line += f" — observed {c['observed']}, expected {c['expected']}"
    return line + (f" ({c['detail']})" if c.get("detail") else "")


def _refused_line(f: dict[str, Any]) -> str:
    where = f"{f['source']}/{f['file']}"
    if f["status"] == "refused":
        text = f"{where}: refused — {f['error'] or 'no reason recorded'}"
    else:
        share = f"{f['reject_share']:.1%}" if f.get("reject_share") is not None else "?"
        limit = f"{f['reject_threshold']:.1%}" if f.get("reject_threshold") is not None else "?"
        text = f"{where}: {f['rows_rejected']} of {f['rows_in']} rows rejected ({share} > threshold {limit})"
    return text + (f"; moved to {f['quarantined_to']}" if f.get("quarantined_to") else "")


def _sql(query: str) -> str:
    return f'qudao sql "{query}"'


def _facts_lines(facts: NightFacts, rid: str, d: date | None) -> tuple[list[str], list[str]]:
    what, where = [], []
    errors = [c for c in facts.failed_checks if c["severity"] == "error"]
    warns = [c for c in facts.failed_checks if c["severity"] != "error"]
    if facts.failed_checks:
        what += [
            "",
            f"Failed checks ({_n(len(errors), 'error')}, {_n(len(warns), 'warning')}"
            + (f" of {facts.checks_total} checks" if facts.checks_total else "")
            + "):",
        ]
        what += [f"  {_check_line(c)}" for c in facts.failed_checks[:40]]
        if len(facts.failed_checks) > 40:
            what.append(f"  … and {len(facts.failed_checks) - 40} more (see ops.quality_results)")
        where.append("Checks: " + _sql(gates.where_to_look(rid)))
    if facts.data_docs:
        where.append(f"Data Docs: {facts.data_docs}")
    if facts.refused_files:
        what += [
            "",
            "Refused files (ops.load_manifest):",
            *[f"  {_refused_line(f)}" for f in facts.refused_files],
        ]
    if facts.rejects:
        what += ["", "Rejected rows, top reasons (ops.rejected_rows):"]
        what += [f"  {r['entity']}: {r['rows']} rows — {r['reason']}" for r in facts.rejects]
    if d and (facts.refused_files or facts.rejects):
        loads, rejected = manifest.where_to_look(d)
        where += ["Loads: " + _sql(loads), "Rejected rows: " + _sql(rejected)]
    return what, where


HEADLINES = {
    "extracts_missing": "extracts missing at the deadline",
    "ingestion": "loading extracts failed",
    "dbt": "dbt build failed",
    "quality_gate": "quality gate blocked publishing",
    "publish": "publishing the marts failed",
    "task": "a task failed",
    "run": "the nightly run failed",
    "deadline": "marts not published by the deadline",
}


def compose(ev: Event, facts: NightFacts, previous: dict[str, Any] | None = None) -> Alert:
    """The alert for ``ev`` (``previous``: the open failure a success recovers from)."""
    d = ev.business_date
    ds = d.isoformat() if d else "unknown date"
    rid = ev.run_id
    if ev.type == "run_success":
        return _success(ev, facts, previous)
    kind = failure_kind(ev)
    headline = HEADLINES[kind]
    outcome = ev.outcome
    sources: list[str] = list(outcome.sources) if outcome is not None else []
    missing: list[str] = []
    landing = ev.conf.get("landing")
    if kind == "extracts_missing" and outcome is not None:
        missing = list(outcome.failed)
        landing = outcome.look[0] if outcome.look else landing
        headline += f": {', '.join(missing)}"
    elif kind == "ingestion":
        headline = f"loading {', '.join(sources) or 'the'} extracts failed"
    errors = [c for c in facts.failed_checks if c["severity"] == "error"]
    warns = [c for c in facts.failed_checks if c["severity"] != "error"]
    if kind == "quality_gate" and facts.failed_checks:
        headline += f" ({_n(len(errors), 'failed check')}, {_n(len(warns), 'warning')})"
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
            what += ["Error:", *_indent(ev.error)]
    fact_what, fact_where = _facts_lines(facts, rid, d)
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
    where.append("Run steps: " + _sql(runs.where_to_look(rid)))
    where.append("Overview: qudao status")

    todo = _todo(kind, ev, ds, missing, landing, sources)
    subject = f"[qudao] FAILED {ev.dag_id} {ds}: {headline}"
    return Alert(
        kind=kind,
        status="failure",
        dag_id=ev.dag_id,
        run_id=rid,
        business_date=d,
        subject=subject,
        what=what,
        where=where,
        todo=todo,
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


def _todo(
    kind: str, ev: Event, ds: str, missing: list[str], landing: str | None, sources: list[str]
) -> list[str]:
    rerun = f"then clear the failed task in Airflow (downstream included) or run `qudao run --date {ds}`"
    if kind == "extracts_missing":
        files = (
            ", ".join(
                f"{landing or '<landing>'}/{m.split('.', 1)[0]}/{ds}/{m.split('.', 1)[1]}.*" for m in missing
            )
            or "the missing files"
        )
        return [
            f"Ask the owners of {', '.join(sources) or 'the sources'} to deliver: {files}.",
            f"When the files are there, clear wait_for_extracts for run {ev.run_id}"
            f" (or `qudao run --date {ds}`).",
        ]
    if kind == "ingestion":
        return [
            "Read the task log: a file the loader could not read or a database error stops the task.",
            "Refused files are quarantined and named in ops.load_manifest with their reason; "
            "ask the source owners for a corrected delivery into the same folder.",
            rerun[0].upper() + rerun[1:] + ".",
        ]
    if kind == "quality_gate":
        return [
            "Look at the failed checks above (observed vs expected) and the Data Docs page.",
            "Fix the cause: a corrected delivery from the source owner (refused files, rejected rows) "
            "or a fix in the dbt models.",
            f"Re-run the gate and publish for the date without reloading: `qudao republish --date {ds}`; "
            f"or clear check_quality for run {ev.run_id} in Airflow.",
        ]
    if kind == "dbt":
        return [
            "Read the dbt failures above and the task log (failing model or test).",
            "Fix the model or the data, " + rerun + ".",
        ]
    if kind == "deadline":
        return [
            "Open the run in Airflow: which task is running, waiting or failed?",
            "BI users still see the previous night; tell them if the delay matters.",
        ]
    return ["Read the task log for the cause and fix it.", rerun[0].upper() + rerun[1:] + "."]


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
        subject = f"[qudao] published {ev.dag_id} {ds} with {_n(len(warns), 'warning')}"
        status, kind = "notice", "digest"
    fact_what, fact_where = _facts_lines(facts, ev.run_id, d)
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
        what += ["Error:", *_indent(ev.error)]
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
