"""Task logs of ``qudao run`` where the Airflow UI reads them.

``qudao run`` runs each night with ``dag.test()``: every task runs inside one process and
Airflow writes its log to the console only, so the UI's Logs tab was empty for those runs.
While a task runs, :func:`capture_task_logs` also writes each of its log events, and each
``qudao run`` progress line, to the file the UI reads for that try
(``<base_log_folder>/dag_id=…/run_id=…/task_id=…/attempt=N.log``, rendered by Airflow's own
``FileTaskHandler``), as the JSON lines a worker writes, exceptions as ``error_detail``.
Runs on a scheduler and workers (docker-compose) log the usual way and never call this.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

_current: ContextVar[IO[str] | None] = ContextVar("qudao_task_log", default=None)


def _write(event: dict[str, Any]) -> None:
    f = _current.get()
    if f is not None:
        head = {k: event.pop(k) for k in ("timestamp", "level", "event") if k in event}
        f.write(json.dumps({**head, **event}, default=str, ensure_ascii=False) + "\n")
        f.flush()


def _tee(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: a copy of the event to the running task's log file."""
    if _current.get() is not None:
        import structlog

        copy = dict(event)
        if copy.get("exc_info"):
            transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            copy = structlog.processors.ExceptionRenderer(transformer)(logger, method, copy)
            if "exception" in copy:
                copy["error_detail"] = copy.pop("exception")
        _write(copy)
    return event


def progress_line(message: str) -> None:
    """A ``qudao run`` progress line, also in the running task's log."""
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    _write({"timestamp": timestamp, "level": "info", "event": message, "logger": "qudao.progress"})


@contextmanager
def _task_log(ti: Any) -> Iterator[Path]:
    from airflow.configuration import conf
    from airflow.utils.log.file_task_handler import FileTaskHandler

    base = Path(conf.get("logging", "base_log_folder"))
    path = base / FileTaskHandler(base_log_folder=str(base))._render_filename(ti, ti.try_number)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        token = _current.set(f)
        try:
            yield path
        finally:
            _current.reset(token)


@contextmanager
def capture_task_logs() -> Iterator[None]:
    """While inside: every task ``dag.test()`` runs also logs to its file for the UI."""
    from unittest import mock

    import structlog
    from airflow.sdk.definitions import dag as dag_module

    processors = list(structlog.get_config()["processors"])
    if _tee not in processors:  # before the renderer, which turns the event into text
        structlog.configure(processors=[*processors[:-1], _tee, processors[-1]])
    run_task = dag_module._run_task

    def run_task_logged(*, ti: Any, task: Any, **kwargs: Any) -> Any:
        with _task_log(ti):
            return run_task(ti=ti, task=task, **kwargs)

    with mock.patch.object(dag_module, "_run_task", run_task_logged):
        yield
