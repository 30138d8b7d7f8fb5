"""The ``qudao`` command line: generate, load, run, query, inspect, operate.

Each command ends with a short summary of what happened and where to look.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from qudao.config import PROJECT_ROOT, settings


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from e


def _dates(args: argparse.Namespace) -> list[date]:
    if args.date:
        return [args.date]
    if not (args.start and args.end):
        raise SystemExit("give --date D, or --start D and --end D")
    if args.end < args.start:
        raise SystemExit(f"--end {args.end} is before --start {args.start}")
    return [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]


def _say(message: str) -> None:
    print(message, flush=True)


# --- commands ---------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from qudao.generate import generate

    started = time.monotonic()
    _say(f"Generating {args.scale} sample extracts {args.start} … {args.end} into {args.landing}")
    summary = generate(args.landing, args.start, args.end, scale=args.scale, seed=args.seed, progress=_say)
    for line in summary.lines():
        _say("  " + line)
    _say(f"Done in {time.monotonic() - started:.1f} s. Next: qudao run --landing {args.landing} --date …")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from qudao.ingest import load_date
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        report = load_date(url, args.landing, args.date, sources=args.source or None, progress=_say)
    for line in report.lines():
        _say(line)
    refused = [f for f in report.files if f.status == "refused"]
    _say(
        f"{len(report.files)} files: "
        f"{sum(f.status == 'loaded' for f in report.files)} loaded, "
        f"{sum(f.status == 'skipped_duplicate' for f in report.files)} skipped as duplicates, "
        f"{len(refused)} refused. Rejected rows: ops.rejected_rows; manifest: ops.load_manifest."
    )
    return 1 if refused else 0


def cmd_run(args: argparse.Namespace) -> int:
    from qudao.orchestration.runner import run_nightly
    from qudao.warehouse.connection import warehouse

    dates = _dates(args)
    log = settings().home / "logs" / f"run-{dates[0]}-{dates[-1]}.log"
    started = time.monotonic()
    _say(f"Running the nightly DAG through Airflow for {len(dates)} night(s); full log: {log}")
    with warehouse():
        results = run_nightly(args.landing, dates, log, echo=_say)
    failed = [r for r in results if r.state != "success"]
    _say("")
    for r in results:
        failed_tasks = f"  failed: {', '.join(r.failed_tasks)}" if r.failed_tasks else ""
        not_run = f"; not run: {', '.join(r.not_run)}" if r.not_run else ""
        _say(f"  {r.business_date}  {r.state:8}  {r.run_id}{failed_tasks}{not_run}")
    if len(results) < len(dates):
        _say(f"  not attempted after the failed night: {', '.join(str(d) for d in dates[len(results) :])}")
    _say(
        f"{len(results) - len(failed)} of {len(dates)} night(s) succeeded "
        f"in {time.monotonic() - started:.0f} s. Details: qudao status; log: {log}"
    )
    return 1 if failed or len(results) < len(dates) else 0


def cmd_sql(args: argparse.Namespace) -> int:
    from qudao.warehouse.connection import connect, warehouse

    query = args.query if args.query != "-" else sys.stdin.read()
    with warehouse() as url, connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        if cur.description is None:
            _say(f"{cur.statusmessage}")
            conn.commit()
            return 0
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.name for c in cur.description])
        n = 0
        for row in cur:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    print(f"({n} rows)", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from qudao.status import status_lines
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        for line in status_lines(url, limit=args.limit):
            _say(line)
    return 0


def cmd_warehouse(args: argparse.Namespace) -> int:
    from qudao.warehouse import embedded
    from qudao.warehouse.connection import connect
    from qudao.warehouse.schema import ensure_schema

    cfg = settings()
    if args.action == "url":
        if cfg.warehouse_url:
            _say(cfg.warehouse_url)
            return 0
        state = embedded.running_state(cfg.home)
        if state is None:
            print("the embedded warehouse is not running: qudao warehouse start", file=sys.stderr)
            return 1
        _say(state.url())
        return 0
    if cfg.warehouse_url and args.action in ("start", "stop"):
        _say(f"QUDAO_WAREHOUSE_URL is set: qudao uses {cfg.warehouse_url} and manages no server.")
        return 0
    if args.action == "start":
        port = args.port or cfg.warehouse_port
        state = embedded.start(cfg.home, port=port, tcp=True, persistent=True)
        with connect(state.url()) as conn:
            ensure_schema(conn)
        _say(f"Embedded warehouse running (data in {cfg.warehouse_dir}).")
        _say(f"  connect:  psql '{state.url()}'")
        _say("  stop:     qudao warehouse stop")
        return 0
    if args.action == "stop":
        stopped = embedded.stop(cfg.home)
        _say("Embedded warehouse stopped." if stopped else "The embedded warehouse was not running.")
        return 0
    if args.action == "init":
        from qudao.warehouse.connection import warehouse

        with warehouse() as url, connect(url) as conn:
            ensure_schema(conn)
            _init_roles(conn)
        _say("Schemas, ops tables and roles are in place.")
        return 0
    raise SystemExit(f"unknown action {args.action}")


def _init_roles(conn: object) -> None:
    try:
        from qudao.warehouse.roles import ensure_roles
    except ImportError:
        return
    ensure_roles(conn)  # type: ignore[arg-type]


def cmd_dbt_parse(args: argparse.Namespace) -> int:
    from qudao.transform import parse

    path = parse()
    _say(f"dbt manifest written to {path.relative_to(PROJECT_ROOT)}")
    return 0


def cmd_lint_sql(args: argparse.Namespace) -> int:
    """sqlfluff with the dbt templater, which compiles the project against the warehouse.

    sqlfluff takes the templater only from a config in the working directory, so the
    lint runs from ``dbt_project/`` (its ``.sqlfluff`` names the dbt templater).
    """
    from sqlfluff.cli.commands import cli as sqlfluff

    from qudao.transform import dbt_environment
    from qudao.warehouse.connection import warehouse

    project = settings().dbt_project_dir
    cwd = Path.cwd()
    with warehouse() as url:
        os.environ.update(dbt_environment(url))
        os.chdir(project)
        try:
            sqlfluff.main(["lint", "models", "--disable-progress-bar", "--nocolor"], standalone_mode=False)
        except SystemExit as e:
            return int(e.code or 0)
        finally:
            os.chdir(cwd)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from qudao.transform import docs
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        index = docs(url)
    _say(f"dbt docs generated: {index}")
    _say(f"  open it with: python -m http.server --directory {index.parent} 8081")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from qudao.publish import rollback
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        try:
            result = rollback(url)
        except RuntimeError as exc:  # nothing to roll back, or older than the kept backups
            _say(f"qudao rollback: {exc}")
            return 1
    for line in result.lines():
        _say(line)
    return 0


def cmd_republish(args: argparse.Namespace) -> int:
    from qudao.publish import republish
    from qudao.transform import manifest_path
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        result = republish(url, args.date, manifest_path())
    for line in result.lines() if hasattr(result, "lines") else [str(result)]:
        _say(line)
    return 0 if getattr(result, "published", True) else 1


def cmd_airflow(args: argparse.Namespace) -> int:
    from qudao.orchestration.airflow_env import airflow_env, ensure_airflow_db
    from qudao.warehouse.connection import warehouse

    env = airflow_env()
    ensure_airflow_db(env)
    with warehouse() as url:
        env["QUDAO_WAREHOUSE_URL"] = url
        return os.spawnve(os.P_WAIT, sys.executable, [sys.executable, "-m", "airflow", *args.args], env)


# --- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    cfg = settings()
    p = argparse.ArgumentParser(prog="qudao", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    g = add("generate", cmd_generate, "write realistic sample extracts into a landing zone")
    g.add_argument("--landing", default=cfg.landing)
    g.add_argument("--start", type=_date, required=True)
    g.add_argument("--end", type=_date, required=True)
    g.add_argument("--scale", choices=("small", "medium", "large"), default="small")
    g.add_argument("--seed", type=int, default=42)

    ld = add("load", cmd_load, "load one business date's extracts into raw (the DAG's loader)")
    ld.add_argument("--landing", default=cfg.landing)
    ld.add_argument("--date", type=_date, required=True)
    ld.add_argument("--source", action="append", choices=("crm", "call_center", "dealer_sales"))

    r = add("run", cmd_run, "run the nightly DAG through Airflow for a date or a range")
    r.add_argument("--landing", default=cfg.landing)
    r.add_argument("--date", type=_date)
    r.add_argument("--start", type=_date)
    r.add_argument("--end", type=_date)

    q = add("sql", cmd_sql, "run a query on the warehouse and print CSV ('-' reads stdin)")
    q.add_argument("query")

    s = add("status", cmd_status, "last runs, loads, quality gates and publishes")
    s.add_argument("--limit", type=int, default=10)

    w = add("warehouse", cmd_warehouse, "the warehouse server: start (TCP), stop, url, init")
    w.add_argument("action", choices=("start", "stop", "url", "init"))
    w.add_argument("--port", type=int)

    add("dbt-parse", cmd_dbt_parse, "parse the dbt project (no database) and write its manifest")
    add("lint-sql", cmd_lint_sql, "lint the dbt models with sqlfluff")
    add("docs", cmd_docs, "generate the dbt docs site")
    add("rollback", cmd_rollback, "restore the previously published marts")
    rp = add("republish", cmd_republish, "re-run the quality gate and publish for a date after a fix")
    rp.add_argument("--date", type=_date, required=True)
    a = add("airflow", cmd_airflow, "run an airflow command with qudao's Airflow settings (e.g. standalone)")
    a.add_argument("args", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qudao`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "landing", None) and "://" not in args.landing:
        args.landing = str(Path(args.landing).resolve())
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
