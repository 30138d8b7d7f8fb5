"""The quality gate's Data Docs as a static site that works offline, with one page per night.

Great Expectations writes its pages under ``<QUDAO_HOME>/data_docs/`` with CSS and
JavaScript from CDNs, and an index that lists only the latest run (the context is
ephemeral). Here, after each gate run:

* every page's CDN ``<link>``/``<script>`` tags are dropped for a local stylesheet
  (:data:`OFFLINE_CSS`, written to ``static/styles/``); the pages' content is plain
  HTML, so it reads without JavaScript;
* the run's suites are added to ``nights/<YYYY-MM-DD>/index.html``, the night's page
  (every gate run of that night, newest first, each suite linked to its GX page), which
  ``ops.gate_runs`` records and ``qudao status`` prints;
* ``index.html`` becomes a list of the nights.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

#: what replaces the CDN stylesheets (Bootstrap and friends) on every page
OFFLINE_CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; }
.container, .container-fluid, main { max-width: 1200px; margin: 0 auto; padding: 1rem; }
a { color: #0b5cad; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.card { border: 1px solid #ddd; border-radius: 4px; margin: 0.75rem 0; padding: 0.5rem 1rem; }
.text-success, .passed { color: #17803d; }
.text-danger, .failed { color: #b42318; }
.text-warning, .warned { color: #9a6700; }
.navbar-toggler, .btn, .ge-cta-footer, .cooltip .top { display: none; }
img { max-height: 2.5rem; }
"""
CSS_PATH = "static/styles/qudao_offline.css"
NIGHTS = "nights"

_CDN_LINK = re.compile(r"""<link\b[^>]*\bhref=["']https?://[^"']*["'][^>]*>\s*""", re.I)
_CDN_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc=["']https?://[^"']*["'][^>]*>\s*</script>\s*""", re.I)
_REMOTE_IMAGE = re.compile(r"""(<img\b[^>]*\bsrc=)["']https?://[^"']*["']""", re.I)
_CSS_URL = re.compile(r"""url\(\s*['"]?https?://[^)'"]*['"]?\s*\)""", re.I)
#: a relative link to the site's static/ folder (GX miscounts the depth of a dotted suite name)
_STATIC_LINK = re.compile(r"""(["'])(?:\./|(?:\.\./)+)static/""")


@dataclass
class SuiteRun:
    """One suite's validation in one gate run, as the night's page shows it."""

    run_name: str
    suite: str
    evaluated: int
    errors: int
    warnings: int
    failed: list[str] = field(default_factory=list)  # "[error] check: observed …, expected …"
    page: str | None = None  # the GX validation page, relative to the site


def make_offline(site: Path) -> None:
    """Rewrite the site's pages and stylesheets to load nothing from the network (idempotent)."""
    css = site / CSS_PATH
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text(OFFLINE_CSS, encoding="utf-8")
    for sheet in (site / "static").rglob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        if _CSS_URL.search(text):
            sheet.write_text(_CSS_URL.sub("none", text), encoding="utf-8")
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if CSS_PATH in text:
            continue
        up = "../" * (len(page.relative_to(site).parts) - 1)
        text = _CDN_SCRIPT.sub("", _CDN_LINK.sub("", text))
        text = _STATIC_LINK.sub(rf"\1{up}static/", text)
        text = _REMOTE_IMAGE.sub(rf'\1"{up}static/images/logo-long.png"', text)
        text = text.replace("</head>", f'<link rel="stylesheet" href="{up}{CSS_PATH}">\n</head>', 1)
        page.write_text(text, encoding="utf-8")


def night_page(site: Path, night: date) -> Path:
    """``<site>/nights/<YYYY-MM-DD>/index.html``: where the night's results are."""
    return site / NIGHTS / night.isoformat() / "index.html"


def add_night_runs(site: Path, night: date, runs: list[SuiteRun]) -> Path:
    """Add a gate run's suites to the night's page and the site index; return the night's page."""
    page = night_page(site, night)
    page.parent.mkdir(parents=True, exist_ok=True)
    store = page.with_name("runs.json")
    kept = json.loads(store.read_text(encoding="utf-8")) if store.exists() else []
    names = {r.run_name for r in runs}
    kept = [asdict(r) for r in runs] + [r for r in kept if r["run_name"] not in names]
    store.write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")
    page.write_text(_night_html(night, [SuiteRun(**r) for r in kept]), encoding="utf-8")
    (site / "index.html").write_text(_index_html(site), encoding="utf-8")
    return page


def _document(title: str, body: list[str], up: str) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f'<link rel="stylesheet" href="{up}{CSS_PATH}">',
            "</head><body><main>",
            f"<h1>{html.escape(title)}</h1>",
            *body,
            "</main></body></html>",
            "",
        ]
    )


def _verdict(runs: list[SuiteRun]) -> str:
    errors, warnings = sum(r.errors for r in runs), sum(r.warnings for r in runs)
    if errors:
        return f'<span class="failed">{errors} error(s)</span>, {warnings} warning(s)'
    if warnings:
        return f'<span class="warned">{warnings} warning(s)</span>'
    return '<span class="passed">every check met</span>'


def _night_html(night: date, runs: list[SuiteRun]) -> str:
    body = [
        '<p><a href="../../index.html">All nights</a>. The gate\'s own SQL checks and the verdict:',
        "<code>ops.quality_results</code>, <code>ops.gate_runs</code>, <code>qudao status</code>.</p>",
    ]
    by_run: dict[str, list[SuiteRun]] = {}
    for r in runs:
        by_run.setdefault(r.run_name, []).append(r)
    for run_name, suites in by_run.items():
        body += [f"<h2>Gate run {html.escape(run_name)}: {_verdict(suites)}</h2>", "<table>"]
        body.append("<tr><th>suite</th><th>checks</th><th>outcome</th><th>not met</th></tr>")
        for s in suites:
            name = html.escape(s.suite)
            link = f'<a href="../../{html.escape(s.page)}">{name}</a>' if s.page else name
            failed = "<br>".join(html.escape(f) for f in s.failed)
            body.append(
                f"<tr><td>{link}</td><td>{s.evaluated}</td><td>{_verdict([s])}</td><td>{failed}</td></tr>"
            )
        body.append("</table>")
    return _document(f"Quality gate of business date {night}", body, "../../")


def _index_html(site: Path) -> str:
    rows = []
    for store in sorted((site / NIGHTS).glob("*/runs.json"), reverse=True):
        runs = [SuiteRun(**r) for r in json.loads(store.read_text(encoding="utf-8"))]
        if not runs:
            continue
        night, latest = store.parent.name, runs[0].run_name
        verdict = _verdict([r for r in runs if r.run_name == latest])
        link = f'<a href="{NIGHTS}/{night}/index.html">{night}</a>'
        rows.append(f"<tr><td>{link}</td><td>{html.escape(latest)}</td><td>{verdict}</td></tr>")
    body = [
        "<p>One page per business date; each suite links to its Great Expectations page.</p>",
        "<table><tr><th>business date</th><th>latest gate run</th><th>its suites</th></tr>",
        *rows,
        "</table>",
    ]
    return _document("qudao quality gates", body, "")
