"""Where alerts go: channels and recipients, read from the environment.

Nothing is required: with no SMTP host and no webhook URL, alerts go to the task
log and to ``<qudao home>/alerts/alerts.log`` (one JSON object per line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Failure kinds whose alert also goes to the owners of the data sources involved.
SOURCE_KINDS = frozenset({"extracts_missing", "ingestion", "quality_gate"})


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (value or "").replace(";", ",").split(",") if a.strip())


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class AlertConfig:
    """Channels and recipients of qudao alerts."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    mail_from: str = "qudao@localhost"
    email_to: tuple[str, ...] = ()  # the data team: every alert
    source_owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> extra recipients
    webhook_url: str | None = None
    timeout: float = 10.0
    log_file: Path | None = None  # the local jsonl file (always written when no channel is configured)
    always_log_file: bool = False

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and (self.email_to or self.source_owners))

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    def recipients(self, kind: str, sources: list[str]) -> list[str]:
        """The data team, plus the owners of ``sources`` for ingestion-type failures."""
        out = list(self.email_to)
        if kind in SOURCE_KINDS or kind == "deadline":
            for s in sources:
                out.extend(self.source_owners.get(s, ()))
        return list(dict.fromkeys(out))

    @classmethod
    def fallback(cls) -> AlertConfig:
        """No channel: the task log and ``<qudao home>/alerts/alerts.log`` only."""
        from qudao.config import settings

        return cls(log_file=settings().home / "alerts" / "alerts.log")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AlertConfig:
        """Read ``QUDAO_SMTP_*``, ``QUDAO_ALERT_*`` (see docs/alerts.md)."""
        env = os.environ if environ is None else environ
        from qudao.contracts import SOURCES

        owners = {s: _split(env.get(f"QUDAO_ALERT_EMAIL_TO_{s.upper()}")) for s in SOURCES}
        port = env.get("QUDAO_SMTP_PORT")
        ssl = _flag(env.get("QUDAO_SMTP_SSL"), False)
        log_file = env.get("QUDAO_ALERT_LOG_FILE")
        if not log_file:
            from qudao.config import settings

            log_file = str(settings().home / "alerts" / "alerts.log")
        return cls(
            smtp_host=env.get("QUDAO_SMTP_HOST") or None,
            smtp_port=int(port) if port else (465 if ssl else 25),
            smtp_user=env.get("QUDAO_SMTP_USER") or None,
            smtp_password=env.get("QUDAO_SMTP_PASSWORD") or None,
            smtp_starttls=_flag(env.get("QUDAO_SMTP_STARTTLS"), False),
            smtp_ssl=ssl,
            mail_from=env.get("QUDAO_ALERT_FROM") or "qudao@localhost",
            email_to=_split(env.get("QUDAO_ALERT_EMAIL_TO")),
            source_owners={s: v for s, v in owners.items() if v},
            webhook_url=env.get("QUDAO_ALERT_WEBHOOK_URL") or None,
            timeout=float(env.get("QUDAO_ALERT_TIMEOUT_SECONDS") or 10),
            log_file=Path(log_file).expanduser(),
            always_log_file=_flag(env.get("QUDAO_ALERT_LOG_ALWAYS"), False),
        )
