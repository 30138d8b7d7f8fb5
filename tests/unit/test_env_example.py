"""``.env.example`` states the alert settings' defaults as the code has them (docs/alerts.md too)."""

from __future__ import annotations

from qudao.alerts.config import AlertConfig
from qudao.config import PROJECT_ROOT


def _example() -> dict[str, str]:
    lines = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_the_example_mail_settings_are_the_defaults() -> None:
    example, default = AlertConfig.from_env(_example()), AlertConfig.from_env({})
    assert _example()["QUDAO_SMTP_STARTTLS"] == "false"
    assert (example.smtp_starttls, example.smtp_ssl, example.smtp_port) == (False, False, 25)
    assert (example.smtp_starttls, example.smtp_ssl, example.smtp_port) == (
        default.smtp_starttls,
        default.smtp_ssl,
        default.smtp_port,
    )


def test_docs_alerts_table_names_the_same_starttls_default() -> None:
    table = (PROJECT_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| `QUDAO_SMTP_STARTTLS`"))
    assert row.rstrip(" |").endswith("false") and AlertConfig.from_env({}).smtp_starttls is False
