"""The words of an alert: headlines, fact lines, where to look, what to do."""

from __future__ import annotations

from datetime import date
from typing import Any

from qudao.alerts.event import Event
from qudao.alerts.facts import NightFacts
from qudao.ledger import gates, manifest


def plural(count: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def indent(text: str) -> list[str]:
    """The non-blank lines of ``text``, indented under a heading."""
    return ["    " + line for line in text.splitlines() if line.strip()]


def check_line(c: dict[str, Any]) -> str:
    """One failed check: mark, severity, suite :: check, observed vs expected (detail)."""
    mark = "FAIL" if c["severity"] == "error" else "WARN"
    line = f"{mark} [{c['severity']}] {c['suite']} :: {c['check']}"
    line += f" — observed {c['observed']}, expected {c['expected']}"
    return line + (f" ({c['detail']})" if c.get("detail") else "")


def refused_line(f: dict[str, Any]) -> str:
    """One refused file, or one that rejected more rows than its threshold allows."""
    where = f"{f['source']}/{f['file']}"
    if f["status"] == "refused":
        text = f"{where}: refused — {f['error'] or 'no reason recorded'}"
    else:
        share = f"{f['reject_share']:.1%}" if f.get("reject_share") is not None else "?"
        limit = f"{f['reject_threshold']:.1%}" if f.get("reject_threshold") is not None else "?"
        text = f"{where}: {f['rows_rejected']} of {f['rows_in']} rows rejected ({share} > threshold {limit})"
    return text + (f"; moved to {f['quarantined_to']}" if f.get("quarantined_to") else "")


def sql_hint(query: str) -> str:
    """The command that runs ``query`` (where to look, for people)."""
    return f'qudao sql "{query}"'


def facts_lines(facts: NightFacts, rid: str, d: date | None) -> tuple[list[str], list[str]]:
    """What the ledger says about the night: lines for "what happened" and for "where to look"."""
    what, where = [], []
    errors = [c for c in facts.failed_checks if c["severity"] == "error"]
    warns = [c for c in facts.failed_checks if c["severity"] != "error"]
    if facts.failed_checks:
        what += [
            "",
            f"Failed checks ({plural(len(errors), 'error')}, {plural(len(warns), 'warning')}"
            + (f" of {facts.checks_total} checks" if facts.checks_total else "")
            + "):",
        ]
        what += [f"  {check_line(c)}" for c in facts.failed_checks[:40]]
        if len(facts.failed_checks) > 40:
            what.append(f"  … and {len(facts.failed_checks) - 40} more (see ops.quality_results)")
        where.append("Checks: " + sql_hint(gates.where_to_look(rid)))
    if facts.data_docs:
        where.append(f"Data Docs: {facts.data_docs}")
    if facts.refused_files:
        what += [
            "",
            "Refused files (ops.load_manifest):",
            *[f"  {refused_line(f)}" for f in facts.refused_files],
        ]
    if facts.rejects:
        what += ["", "Rejected rows, top reasons (ops.rejected_rows):"]
        what += [f"  {r['entity']}: {r['rows']} rows — {r['reason']}" for r in facts.rejects]
    if d and (facts.refused_files or facts.rejects):
        loads, rejected = manifest.where_to_look(d)
        where += ["Loads: " + sql_hint(loads), "Rejected rows: " + sql_hint(rejected)]
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


def headline(kind: str, sources: list[str], missing: list[str], facts: NightFacts) -> str:
    """The subject's words after the date: what broke, in a few words."""
    if kind == "extracts_missing" and missing:
        return f"{HEADLINES[kind]}: {', '.join(missing)}"
    if kind == "ingestion":
        return f"loading {', '.join(sources) or 'the'} extracts failed"
    text = HEADLINES[kind]
    if kind == "quality_gate" and facts.failed_checks:
        errors = [c for c in facts.failed_checks if c["severity"] == "error"]
        warns = [c for c in facts.failed_checks if c["severity"] != "error"]
        text += f" ({plural(len(errors), 'failed check')}, {plural(len(warns), 'warning')})"
    return text


def todo(
    kind: str, ev: Event, ds: str, missing: list[str], landing: str | None, sources: list[str]
) -> list[str]:
    """Numbered steps for people: what to do about this kind of failure."""
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
