"""The alert message and its renderings: plain text (e-mail, log), webhook JSON, ledger record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


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
