"""Render a period's report into its folder and e-mail it.

Files: ``<reports dir>/<2026-W45 | 2026-11>/`` holds ``<name>_<label>.html`` and
``.xlsx``. The reports dir is ``QUDAO_REPORTS_DIR``, by default ``<QUDAO_HOME>/reports``.
A file is rewritten only when its bytes change, so regenerating a report of
unchanged marts leaves it as it was. E-mail goes through the alerts' SMTP settings
(``QUDAO_SMTP_*``) to ``QUDAO_REPORT_EMAIL_TO`` (comma-separated), when both are set.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path

from qudao.config import settings
from qudao.reports.periods import Period, closed_month, closed_week

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def reports_dir() -> Path:
    value = os.environ.get("QUDAO_REPORTS_DIR")
    return Path(value).expanduser() if value else settings().home / "reports"


@dataclass
class Rendered:
    """One report written: its period, files, and what delivery did."""

    period: Period
    html: Path
    xlsx: Path
    changed: bool
    mail: str = ""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        state = "written" if self.changed else "unchanged"
        mail = f"; {self.mail}" if self.mail else ""
        return f"{self.period.name} {self.period.label}: {self.html} ({state}){mail}"


def _replace_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as f:
        f.write(data)
    os.replace(f.name, path)
    return True


def render(url: str, period: Period, *, out_dir: Path | None = None, send: bool = True) -> Rendered:
    """Build, write and (if configured) e-mail the report of ``period`` from the published marts."""
    from qudao.metrics.engine import Metrics
    from qudao.reports.content import build_report
    from qudao.reports.html import render_html
    from qudao.reports.xlsx import write_xlsx

    report = build_report(Metrics(url), period)
    folder = (out_dir or reports_dir()) / period.label
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{period.name}_{period.label}"
    html_path, xlsx_path = folder / f"{stem}.html", folder / f"{stem}.xlsx"
    changed = _replace_if_changed(html_path, render_html(report).encode("utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "report.xlsx"
        write_xlsx(report, scratch)
        changed = _replace_if_changed(xlsx_path, scratch.read_bytes()) or changed
    done = Rendered(period, html_path, xlsx_path, changed)
    if send:
        done.mail = send_report(done)
    return done


def periods_closed_by(business_date: date) -> list[Period]:
    """What a published night renders: the ISO week that closed by ``business_date`` and, on a
    month's last business date (the night run on the 1st), that month."""
    week, month = closed_week(business_date), closed_month(business_date)
    return [week, month] if month.end == business_date else [week]


def send_report(done: Rendered, environ: dict[str, str] | None = None) -> str:
    """E-mail both files; returns a short note (``skipped: …`` when not configured)."""
    from qudao.alerts.channels import deliver_mail
    from qudao.alerts.config import AlertConfig

    env = os.environ if environ is None else environ
    cfg = AlertConfig.from_env(dict(env))
    to = [a.strip() for a in env.get("QUDAO_REPORT_EMAIL_TO", "").split(",") if a.strip()]
    if not to:
        return "e-mail skipped: no QUDAO_REPORT_EMAIL_TO"
    if not cfg.smtp_host:
        return "e-mail skipped: no QUDAO_SMTP_HOST"
    p = done.period
    msg = EmailMessage()
    msg["Subject"] = f"{p.name} {p.title}"
    msg["From"] = cfg.mail_from
    msg["To"] = ", ".join(to)
    msg.set_content(
        f"{p.name} {p.title}（{p.start.isoformat()} 至 {p.end.isoformat()}）见附件：\n"
        f"  {done.html.name}（浏览器打开，含图表）\n  {done.xlsx.name}（Excel 表格）\n"
    )
    msg.add_attachment(done.html.read_text(encoding="utf-8"), subtype="html", filename=done.html.name)
    msg.add_attachment(
        done.xlsx.read_bytes(), maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=done.xlsx.name
    )
    deliver_mail(cfg, msg)
    return f"e-mailed to {', '.join(to)}"


def listed(reports: Path | None = None, limit: int = 10) -> list[Path]:
    """The latest reports' HTML files, the most recently written first."""
    root = reports or reports_dir()
    if not root.exists():
        return []
    return sorted(root.glob("*/*.html"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)[:limit]


def status_lines(reports: Path | None = None, limit: int = 5) -> list[str]:
    """The ``qudao status`` block: where the latest reports are."""
    files = listed(reports, limit)
    if not files:
        return ["reports: none yet (qudao report renders the latest closed week)"]
    return ["reports (open the HTML in a browser; the XLSX beside it):"] + [f"  {p}" for p in files]
