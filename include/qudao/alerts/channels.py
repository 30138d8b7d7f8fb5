"""Delivery: e-mail over SMTP, a JSON webhook, and the local ``alerts.log`` file."""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from qudao.alerts.config import AlertConfig
from qudao.alerts.message import Alert


def deliver_mail(cfg: AlertConfig, msg: EmailMessage) -> None:
    """Hand one message to the configured SMTP server (SSL, STARTTLS and login as set)."""
    if cfg.smtp_ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout)
    with smtp:
        if cfg.smtp_starttls and not cfg.smtp_ssl:
            smtp.starttls(context=ssl.create_default_context())
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password or "")
        smtp.send_message(msg)


def send_email(cfg: AlertConfig, alert: Alert) -> str:
    """Send the alert as a plain-text e-mail; returns a short delivery note."""
    to = cfg.recipients(alert.kind, alert.sources)
    if not to:
        return "skipped: no recipients"
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = cfg.mail_from
    msg["To"] = ", ".join(to)
    msg["X-Qudao-Alert"] = f"{alert.status}; kind={alert.kind}; run={alert.run_id}"
    msg.set_content(alert.body())
    assert cfg.smtp_host
    deliver_mail(cfg, msg)
    return f"sent to {', '.join(to)}"


def send_webhook(cfg: AlertConfig, alert: Alert) -> str:
    """POST the Slack-compatible JSON payload; any non-2xx answer is an error."""
    assert cfg.webhook_url
    data = json.dumps(alert.webhook_payload(), default=str, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        cfg.webhook_url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
        status = resp.status
    if not 200 <= status < 300:
        raise RuntimeError(f"webhook answered HTTP {status}")
    return f"posted (HTTP {status})"


def write_file(path: Path, alert: Alert, channels: dict[str, str]) -> str:
    """Append the alert as one JSON line to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {**alert.record(), "body": alert.body(), "channels": channels}, default=str, ensure_ascii=False
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return f"written to {path}"
