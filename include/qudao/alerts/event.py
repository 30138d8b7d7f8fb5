"""The event model: what one qudao callback says, whatever Airflow passed it.

:func:`event_of` reads the context of any callback (task failure, DAG run failure or
success, missed deadline) into an :class:`Event`, the failed step's typed outcome included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


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
