"""The ``qudao`` command line: generate, load, run, query, inspect, operate.

Each command ends with a short summary of what happened and where to look.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from qudao.config import PROJECT_ROOT, settings

if TYPE_CHECKING:
    import psycopg

#: the sample range ``qudao generate`` writes by default: the demo's 14 nights (the Makefile's
#: DEMO_START / DEMO_END, which tests/unit/test_cli_errors.py keeps equal to these)
DEMO_START = date(2026, 11, 1)
DEMO_END = date(2026, 11, 14)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from e


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return number


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
    try:
        from qudao_demo import generate
    except ModuleNotFoundError as e:
        if e.name != "qudao_demo":
            raise
        raise UsageError("needs the demo tools: make install, or uv pip install --no-deps -e tools") from e
    if args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}")
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


#: exit status of ``qudao run`` when another run holds the night lock (EX_TEMPFAIL: try again later)
NIGHT_RUNNING_EXIT = 75


def cmd_run(args: argparse.Namespace) -> int:
    from qudao.orchestration.night_lock import NightRunning, night_lock
    from qudao.orchestration.runner import DAG_ID, Interrupted, Interruptible, run_nightly
    from qudao.warehouse.connection import warehouse

    dates = _dates(args)
    cfg = settings()
    log = cfg.home / "logs" / f"run-{dates[0]}-{dates[-1]}.log"
    started = time.monotonic()
    try:
        with Interruptible() as signals, night_lock(cfg.home, DAG_ID, dates, cfg.warehouse_url) as lock:
            _say(f"Running the nightly DAG through Airflow for {len(dates)} night(s); full log: {log}")
            with warehouse() as url:
                skipped = [] if args.force else _unchanged_nights(url, args.landing, dates)
                todo = dates[len(skipped) :]
                results = (
                    run_nightly(args.landing, todo, log, echo=_say, signals=signals, keep_fds=(lock.fd,))
                    if todo
                    else []
                )
    except NightRunning as exc:
        print(f"{exc}; nights run one at a time: wait for it or stop it", file=sys.stderr)
        return NIGHT_RUNNING_EXIT
    except Interrupted as exc:
        if exc.log is None and log.exists():
            exc.log = log
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    failed = [r for r in results if r.state != "success"]
    _say("")
    for d, reason in skipped:
        _say(f"  {d}  skipped   {reason}")
    for r in results:
        failed_tasks = f"  failed: {', '.join(r.failed_tasks)}" if r.failed_tasks else ""
        not_run = f"; not run: {', '.join(r.not_run)}" if r.not_run else ""
        _say(f"  {r.business_date}  {r.state:8}  {r.run_id}{failed_tasks}{not_run}")
        for line in r.why():  # the failed step's typed outcome, from the ledger
            _say(f"      {line}")
    if len(results) < len(todo):
        _say(f"  not attempted after the failed night: {', '.join(str(d) for d in todo[len(results) :])}")
    done = len(results) - len(failed) + len(skipped)
    _say(
        f"{done} of {len(dates)} night(s) succeeded"
        + (f" ({len(skipped)} unchanged, skipped)" if skipped else "")
        + f" in {time.monotonic() - started:.0f} s. Details: qudao status; log: {log}"
    )
    return 1 if failed or len(results) < len(todo) else 0


def _unchanged_nights(url: str, landing: str, dates: list[date]) -> list[tuple[date, str]]:
    """The leading nights of ``dates`` that need not run again, each with its one-line reason.

    Only a leading run of nights: once one night runs, the nights after it read what it
    loads, so they run too.
    """
    from qudao.night_inputs import unchanged_since_published

    out = []
    for d in dates:
        reason = unchanged_since_published(url, landing, d)
        if reason is None:
            break
        out.append((d, reason))
    return out


def cmd_sql(args: argparse.Namespace) -> int:
    import psycopg

    from qudao.warehouse.connection import connect, warehouse

    query = args.query if args.query != "-" else sys.stdin.read()
    with warehouse() as url, connect(url, autocommit=True) as conn:
        try:
            if not args.write:
                _read_only_session(conn)
            return _print_query(conn, query, commit=args.write)
        except psycopg.Error as exc:
            print(f"qudao sql: {_sql_error(exc, write=args.write)}", file=sys.stderr)
            return 1


def _read_only_session(conn: psycopg.Connection) -> None:
    """Read as ``qudao_operator`` (every schema, no writes) in read-only transactions.

    A superuser first applies the grants if this database lacks them (``qudao
    warehouse init`` not run here yet). A session user who may not become the role
    (e.g. a login of its own in QUDAO_WAREHOUSE_URL) reads as itself, still read-only.
    """
    from psycopg import sql

    from qudao.warehouse.roles import OPERATOR, ensure_roles

    check = (
        "select coalesce(pg_has_role(session_user, r.oid, 'MEMBER'), false),"
        " coalesce(has_schema_privilege(r.oid, n.oid, 'USAGE'), false),"
        " (select rolsuper from pg_roles where rolname = session_user)"
        " from (select 1) as one left join pg_roles as r on r.rolname = %s"
        " left join pg_namespace as n on n.nspname = 'ops'"
    )
    member, granted, superuser = conn.execute(check, (OPERATOR,)).fetchone()  # type: ignore[misc]
    if superuser and not granted:
        ensure_roles(conn)
        member = True
    if member:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(OPERATOR)))
    conn.execute("set default_transaction_read_only = on")


def _print_query(conn: psycopg.Connection, query: str, *, commit: bool) -> int:
    """Run ``query`` in one transaction (rolled back unless ``commit``); rows as CSV on stdout."""
    with conn.transaction(force_rollback=not commit), conn.cursor() as cur:
        cur.execute(query)
        if cur.description is None:
            _say(f"{cur.statusmessage}")
            return 0
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.name for c in cur.description])
        n = 0
        for row in cur:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    print(f"({n} rows)", file=sys.stderr)
    return 0


def _sql_error(exc: psycopg.Error, *, write: bool) -> str:
    """One line: PostgreSQL's message, and what to do when the read-only default refused it."""
    from psycopg import errors

    message = (getattr(exc.diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return f"{message} (qudao sql only reads; add --write to change the warehouse)"
    if isinstance(exc, errors.InsufficientPrivilege) and not write:
        return f"{message} (qudao sql reads as qudao_operator; --write runs as the warehouse's owner)"
    return message


def cmd_status(args: argparse.Namespace) -> int:
    from qudao.status import status_lines
    from qudao.warehouse.connection import warehouse

    with warehouse() as url:
        for line in status_lines(url, limit=args.limit):
            _say(line)
    from qudao.reports.deliver import status_lines as report_lines

    for line in report_lines():
        _say(line)
    return 0


def cmd_warehouse(args: argparse.Namespace) -> int:
    from qudao.warehouse import embedded
    from qudao.warehouse.connection import connect
    from qudao.warehouse.schema import ensure_schema

    cfg = settings()
    if args.action == "login":
        return _cmd_login(args)
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
        try:
            state = embedded.start(cfg.home, port=args.port or cfg.warehouse_port, tcp=True, persistent=True)
        except embedded.WarehouseBusy as exc:
            print(f"qudao warehouse start: {exc}", file=sys.stderr)
            return 1
        with connect(state.url()) as conn:
            ensure_schema(conn)
        _say(f"Embedded warehouse running on {embedded.TCP_HOST}:{state.port} (data in {cfg.warehouse_dir}).")
        _say(f'  superuser:  psql "$(qudao warehouse url)"  (password: {embedded.password_file(cfg.home)})')
        _say("  logins:     qudao warehouse login create NAME --role analyst|bi_reader")
        _say("  stop:       qudao warehouse stop")
        return 0
    if args.action == "stop":
        was_running = embedded.running_state(cfg.home) is not None
        users = embedded.stop_when_unused(cfg.home)
        if users:
            pids = ", ".join(map(str, users))
            _say(f"The embedded warehouse is in use (pid {pids}): it stops when the last of them ends.")
        else:
            _say("Embedded warehouse stopped." if was_running else "The embedded warehouse was not running.")
        return 0
    if args.action == "init":
        from qudao.warehouse.connection import warehouse

        with warehouse() as url, connect(url) as conn:
            ensure_schema(conn)
            _init_roles(conn)
        _say("Schemas, ops tables and roles are in place.")
        return 0
    raise SystemExit(f"unknown action {args.action}")


#: What a login's name may look like (a PostgreSQL identifier that needs no quoting).
_LOGIN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _cmd_login(args: argparse.Namespace) -> int:
    """``qudao warehouse login create NAME --role R`` / ``login drop NAME``."""
    import secrets

    from qudao.warehouse import embedded
    from qudao.warehouse.connection import connect, warehouse
    from qudao.warehouse.roles import GROUP_ROLES, create_login, drop_login

    cfg = settings()
    name = args.name
    where = f"qudao warehouse login {args.login_action}"
    if not _LOGIN_NAME.fullmatch(name) or name in GROUP_ROLES or name == embedded.SUPERUSER:
        print(f"{where}: {name!r} cannot be a login: use lower-case letters, digits and _", file=sys.stderr)
        return 2
    if args.login_action == "drop":
        with warehouse() as url, connect(url, autocommit=True) as conn:
            existed = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
            drop_login(conn, name)
        _say(f"Login {name} dropped." if existed else f"There was no login {name}.")
        return 0
    if cfg.warehouse_url:
        admin_url = cfg.warehouse_url
    else:
        try:  # its URL is a TCP one: the server must listen there, and keep running for it
            state = embedded.start(cfg.home, port=args.port or cfg.warehouse_port, tcp=True, persistent=True)
        except embedded.WarehouseBusy as exc:
            print(f"{where}: {exc}", file=sys.stderr)
            return 1
        admin_url = state.url()
    password = secrets.token_hex(16)
    with connect(admin_url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            again = f"qudao warehouse login drop {name}, then create it again"
            print(f"{where}: {name} exists; for a new password: {again}", file=sys.stderr)
            return 1
        from qudao.warehouse.schema import ensure_schema

        ensure_schema(conn)
        _init_roles(conn)
        create_login(conn, name, args.role, password)
    _say(f"Login {name} created in role {args.role}. Its URL, shown only now (the password is kept nowhere):")
    _say(f"  {_login_url(admin_url, name, password)}")
    if not cfg.warehouse_url:
        _say("The embedded warehouse keeps running for it on TCP; qudao warehouse stop stops it.")
    return 0


def _login_url(server_url: str, user: str, password: str) -> str:
    """``server_url`` (host, port, database) with ``user:password`` as the credentials."""
    parts = urlsplit(server_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(
        q for q in parts.query.split("&") if q and not q.lower().startswith(("password=", "user="))
    )
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}", query=query))


def _init_roles(conn: psycopg.Connection) -> None:
    from qudao.warehouse.roles import ensure_roles

    ensure_roles(conn)


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
    from qudao.warehouse.connection import connect, warehouse

    with warehouse() as url:
        connect(url).close()  # an unreachable warehouse: one clear line, not dbt's log of it
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
            print(f"qudao rollback: {exc}", file=sys.stderr)
            return 1
    for line in result.lines():
        _say(line)
    return 0


def cmd_republish(args: argparse.Namespace) -> int:
    from qudao.orchestration.republish import republish
    from qudao.transform import manifest_path
    from qudao.warehouse.connection import warehouse

    log_dir = settings().home / "logs" / f"republish-{args.date}-{time.strftime('%Y%m%dT%H%M%S')}"
    _say(f"Republishing {args.date}: dbt build, quality gate, publish; dbt log: {log_dir / 'dbt.log'}")
    with warehouse() as url:
        result = republish(url, args.date, manifest_path(), log_dir=log_dir)
    for line in result.lines():
        _say(line)
    return 0 if result.published else 1


def cmd_airflow(args: argparse.Namespace) -> int:
    from qudao.orchestration.airflow_env import (
        PASSWORDS_FILE,
        airflow_env,
        ensure_airflow_db,
        secure_airflow_home,
    )
    from qudao.orchestration.airflow_local import STANDALONE_COMPONENTS, supervise
    from qudao.warehouse.connection import warehouse

    env = airflow_env()
    ensure_airflow_db(env)
    if args.args[:1] == ["standalone"]:
        commands = STANDALONE_COMPONENTS
        ui = f"http://{env['AIRFLOW__API__HOST']}:{env['AIRFLOW__API__PORT']}"
        password = Path(env["AIRFLOW_HOME"]) / PASSWORDS_FILE
        _say(f"Airflow UI: {ui}  (user admin, password in {password}); Ctrl-C stops it")
    else:
        commands = {"airflow": args.args}
    with warehouse() as url:
        env["QUDAO_WAREHOUSE_URL"] = url
        try:
            return supervise(commands, env)
        finally:
            secure_airflow_home(env)


# --- parser -------------------------------------------------------------------------------


def _warehouse_actions(w: argparse.ArgumentParser) -> None:
    from qudao.warehouse.roles import READER_ROLES

    actions = w.add_subparsers(dest="action", required=True, metavar="{start,stop,url,init,login}")

    def action(parent: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help_, description=help_)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    start = action(actions, "start", "keep the embedded server running, on 127.0.0.1 too")
    start.add_argument("--port", type=int)
    action(actions, "stop", "stop the embedded server (once no command uses it)")
    action(actions, "url", "print the superuser's URL (with its password)")
    action(actions, "init", "schemas, ops tables, group roles and grants (idempotent)")
    logins = action(actions, "login", "logins for analysts and BI tools").add_subparsers(
        dest="login_action", required=True
    )
    create = action(logins, "create", "create a login with a generated password; print its URL once")
    create.add_argument("name")
    create.add_argument("--role", choices=READER_ROLES, required=True)
    create.add_argument("--port", type=int, help="TCP port of the embedded server if it must start")
    action(logins, "drop", "drop a login").add_argument("name")


def build_parser() -> argparse.ArgumentParser:
    cfg = settings()
    p = argparse.ArgumentParser(prog="qudao", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show an error's full Python traceback")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        if name != "airflow":  # airflow's own arguments pass through untouched
            sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    g = add("generate", cmd_generate, "write realistic sample extracts into a landing zone")
    g.add_argument("--landing", default=cfg.landing)
    g.add_argument("--start", type=_date, default=DEMO_START, help=f"first date (default {DEMO_START})")
    g.add_argument("--end", type=_date, default=DEMO_END, help=f"last date (default {DEMO_END})")
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
    r.add_argument(
        "--force", action="store_true", help="rebuild nights that did not change since they were published"
    )

    q = add("sql", cmd_sql, "run a read-only query on the warehouse and print CSV ('-' reads stdin)")
    q.add_argument("query")
    q.add_argument("--write", action="store_true", help="run as the warehouse's owner and commit")

    s = add("status", cmd_status, "last runs, loads, quality gates and publishes")
    s.add_argument("--limit", type=_positive, default=10, help="runs and publishes to show (default 10)")

    w = add("warehouse", cmd_warehouse, "the warehouse server: start (TCP), stop, url, init, login")
    _warehouse_actions(w)

    add("dbt-parse", cmd_dbt_parse, "parse the dbt project (no database) and write its manifest")
    add("lint-sql", cmd_lint_sql, "lint the dbt models with sqlfluff")
    add("docs", cmd_docs, "generate the dbt docs site")
    add("rollback", cmd_rollback, "restore the previously published marts")
    rp = add("republish", cmd_republish, "re-run the quality gate and publish for a date after a fix")
    rp.add_argument("--date", type=_date, required=True)
    from qudao.metrics.cli import add_arguments as metrics_arguments
    from qudao.metrics.cli import cmd_metrics

    metrics_arguments(add("metrics", cmd_metrics, "the semantic layer: list metrics, query them from marts"))
    from qudao.reports.cli import add_arguments as report_arguments
    from qudao.reports.cli import cmd_report

    report_arguments(add("report", cmd_report, "render the weekly bulletin / monthly report (HTML + XLSX)"))
    a = add("airflow", cmd_airflow, "run an airflow command with qudao's Airflow settings (e.g. standalone)")
    a.add_argument("args", nargs=argparse.REMAINDER)
    return p


class UsageError(Exception):
    """A mistake in the command line or its input: the message says what to change (exit status 2)."""


#: commands that read a landing zone: it must exist before they start anything
_READS_LANDING = ("load", "run")


def _require_landing(landing: str) -> None:
    from qudao.ingest.landing import landing_exists

    if not landing_exists(landing):
        raise UsageError(
            f"the landing zone {landing} does not exist: give --landing FOLDER or set QUDAO_LANDING"
            " (qudao generate writes sample extracts into one)"
        )


def _without_password(url: str) -> str:
    """``url`` with its password (in the user part or the query) left out."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(q for q in parts.query.split("&") if q and not q.lower().startswith("password="))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _first_line(text: str) -> str:
    """The first non-empty line; a line ending in ':' (a list follows) gets the next one too."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or [""]
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def _explain(exc: Exception) -> tuple[str, str, int]:
    """(message, what to do, exit status) of an error that ended a command."""
    import subprocess

    import psycopg

    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:  # no server answered that
        cfg = settings()
        reason = _first_line(str(exc)).removeprefix("connection failed: ")
        if cfg.warehouse_url:
            where = _without_password(cfg.warehouse_url)
            todo = "Check QUDAO_WAREHOUSE_URL or unset it to use the embedded server."
            return f"cannot reach the warehouse at {where}: {reason}", todo, 1
        log = cfg.warehouse_dir / "server.log"
        return f"cannot reach the embedded warehouse: {reason}", f"Its server log: {log}.", 1
    if isinstance(exc, FileNotFoundError | NotADirectoryError | PermissionError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}", "", 2
    if isinstance(exc, ValueError):
        return _first_line(str(exc)), "", 2
    if isinstance(exc, subprocess.CalledProcessError):
        output = exc.stderr or exc.output or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        command = Path(str(exc.cmd[0] if isinstance(exc.cmd, list | tuple) else exc.cmd)).name
        return f"{command} failed (exit {exc.returncode}): {_first_line(output)}".rstrip(": "), "", 1
    return f"{type(exc).__name__}: {_first_line(str(exc))}", "", 1


def _log_traceback(argv: list[str]) -> Path | None:
    """Append the current exception's traceback to ``<QUDAO_HOME>/logs/qudao-errors.log``."""
    import traceback
    from datetime import UTC, datetime

    log = settings().home / "logs" / "qudao-errors.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} pid {os.getpid()}: qudao {' '.join(argv)}\n")
            f.write(traceback.format_exc())
    except OSError:
        return None
    return log


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qudao`` console script.

    An error ends the command with one or two lines on stderr (``qudao <command>: …``)
    and a non-zero exit status (2: fix the command line or its input); the traceback
    goes to ``<QUDAO_HOME>/logs/qudao-errors.log``, and ``--debug`` shows it instead.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()  # reads the settings
    except ValueError as exc:
        if "--debug" in argv:
            raise
        print(f"qudao: a QUDAO_* setting in the environment is not valid: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    name = f"qudao {args.command}"
    try:
        if getattr(args, "landing", None) and "://" not in args.landing:
            args.landing = str(Path(args.landing).resolve())
        if args.command in _READS_LANDING:
            _require_landing(args.landing)
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # a command's own refusal, e.g. raise SystemExit("give --date D …")
        if isinstance(exc.code, str) and not args.debug:
            print(f"{name}: {exc.code}", file=sys.stderr)
            return 2
        raise
    except UsageError as exc:
        if args.debug:
            raise
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        message, todo, status = _explain(exc)
        log = _log_traceback(argv)
        print(f"{name}: {message}", file=sys.stderr)
        where = f"traceback in {log}; --debug shows it" if log else "--debug shows the traceback"
        print(f"  {todo + ' ' if todo else ''}({where})", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
