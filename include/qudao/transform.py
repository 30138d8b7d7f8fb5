"""Running dbt against the warehouse: the nightly build, parse, docs.

dbt is invoked in-process (``dbtRunner``). Connection fields reach the profile as
``QUDAO_DBT_*`` environment variables; the PII hashing key reaches PostgreSQL as
a session setting through ``PGOPTIONS`` so that it never appears in compiled SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

import psycopg

from qudao.config import environment, settings
from qudao.ledger import dbt_state
from qudao.warehouse.connection import dbt_target

#: placeholder connection for commands that do not connect (parse, lint)
_OFFLINE_TARGET = {
    "QUDAO_DBT_HOST": "localhost",
    "QUDAO_DBT_PORT": "5432",
    "QUDAO_DBT_USER": "postgres",
    "QUDAO_DBT_PASSWORD": "",
    "QUDAO_DBT_DBNAME": "qudao",
}


def pii_key() -> str:
    """The key phones are hashed with: ``QUDAO_PII_KEY``, else a generated local key.

    The local key lives in ``.qudao/pii.key`` (never in the repository), so hashes
    are stable across runs on one installation.
    """
    key = os.environ.get("QUDAO_PII_KEY")
    if key:
        return key
    path = settings().home / "pii.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


#: planner settings of dbt's sessions. A night touches a few keys of large tables: with
#: the default random_page_cost (4, spinning disks) PostgreSQL scans a whole table rather
#: than probe its key index for them; 1.1 is the usual value for SSDs and cached data.
#: JIT compilation costs more than it saves on the nightly queries.
PLANNER_SETTINGS = "-c random_page_cost=1.1 -c jit=off"


def dbt_environment(url: str | None) -> dict[str, str]:
    """Environment variables dbt needs for ``url`` (None: offline placeholders)."""
    env = dict(_OFFLINE_TARGET if url is None else dbt_target(url))
    key = pii_key()
    if any(c.isspace() or c == "\\" for c in key):
        raise ValueError("QUDAO_PII_KEY must not contain white space or backslashes")
    env["PGOPTIONS"] = f"-c qudao.pii_key={key} {PLANNER_SETTINGS}"
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DO_NOT_TRACK"] = "1"
    return env


@dataclass(frozen=True)
class TestOutcome:
    """One dbt data test of a build: a structural rule of a model (grain, not null, …)."""

    unique_id: str
    name: str
    status: str  # pass | fail | warn | error | skipped
    failures: int  # rows that broke the rule
    model: str | None  # the model the test is attached to
    message: str = ""


#: how PostgreSQL words an integrity constraint a row broke (SQLSTATE class 23; the
#: server's English messages, as the embedded and the Docker servers send them: in another
#: language the refusal reads as a dbt error, retried, then alerted as one)
CONSTRAINT_BROKEN = re.compile(
    r"(?:null value in column .{0,200}?|duplicate key value |new row .{0,200}?)?"
    r"violates (?:not-null|unique|check|exclusion|foreign key) constraint"
)


@dataclass(frozen=True)
class NodeRun:
    """One node a dbt invocation ran: how it ended, its seconds, its compiled SQL."""

    unique_id: str
    status: str
    seconds: float
    compiled_code: str


@dataclass
class DbtResult:
    """What one dbt invocation did."""

    command: list[str]
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> number of nodes
    failures: list[str] = field(default_factory=list)  # "<node>: <message>"
    tests: list[TestOutcome] = field(default_factory=list)
    nodes: list[NodeRun] = field(default_factory=list)
    #: models whose rows PostgreSQL refused by an enforced constraint (a grain's primary key,
    #: a not-null column): the data broke a rule of the model's contract
    broken_constraints: list[TestOutcome] = field(default_factory=list)

    @property
    def failed_tests(self) -> list[TestOutcome]:
        """Tests whose rule the data broke (not tests that could not run)."""
        return [t for t in self.tests if t.status == "fail"]

    @property
    def only_rules_broken(self) -> bool:
        """The build failed because data broke the models' rules (their tests, their enforced
        constraints), not because SQL or dbt itself errored."""
        other_errors = self.counts.get("error", 0) - len(self.broken_constraints)
        crashed = any(f.startswith("dbt raised:") for f in self.failures)
        broken = bool(self.failed_tests or self.broken_constraints)
        return not self.success and broken and not other_errors and not crashed

    def lines(self) -> list[str]:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        out = [f"dbt {' '.join(self.command[:1])}: {'ok' if self.success else 'FAILED'} ({counts})"]
        out += [f"  {f}" for f in self.failures]
        return out


def run_dbt(args: list[str], url: str | None, extra_env: dict[str, str] | None = None) -> DbtResult:
    """Run one dbt command in-process against ``url`` and summarise it.

    ``extra_env``: further environment variables for this invocation only (the night's dates,
    :func:`night_environment`).
    """
    from dbt.cli.main import dbtRunner

    cfg = settings()
    full = [*args, "--project-dir", str(cfg.dbt_project_dir), "--profiles-dir", str(cfg.dbt_profiles_dir)]
    with environment({**dbt_environment(url), **(extra_env or {})}):
        res = dbtRunner().invoke(full)
    result = DbtResult(command=args, success=bool(res.success))
    nodes = getattr(res.result, "results", None) or []
    for node in nodes:
        status = str(getattr(node.status, "value", node.status))
        result.counts[status] = result.counts.get(status, 0) + 1
        code = getattr(node.node, "compiled_code", None) or ""
        result.nodes.append(NodeRun(node.node.unique_id, status, float(node.execution_time or 0), code))
        if status in ("error", "fail"):
            result.failures.append(f"{node.node.unique_id}: {(node.message or '').strip()[:500]}")
        message = " ".join((node.message or "").split())
        broken = CONSTRAINT_BROKEN.search(message) if status == "error" else None
        if broken:
            result.broken_constraints.append(
                TestOutcome(
                    node.node.unique_id,
                    f"{node.node.name}: constraints",
                    "fail",
                    1,  # at least the row PostgreSQL names; it stops at the first
                    node.node.unique_id,
                    message[broken.start() :][:500],
                )
            )
        if str(getattr(node.node.resource_type, "value", node.node.resource_type)) == "test":
            result.tests.append(
                TestOutcome(
                    node.node.unique_id,
                    node.node.name,
                    status,
                    int(getattr(node, "failures", None) or 0),
                    getattr(node.node, "attached_node", None),
                    (node.message or "").strip()[:500],
                )
            )
    if res.exception is not None:
        result.failures.append(f"dbt raised: {res.exception}")
    return result


#: tests that read every delivered row (the staging views rank all of raw): they run when
#: the whole history is built and tested, not every night (the same rules are tested on
#: the facts, for the night's rows)
FULL_HISTORY_TAG = "full_history"


@dataclass(frozen=True)
class TestPlan:
    """Which of dbt's nodes a build runs, decided from ``ops.dbt_state`` (:func:`plan_tests`).

    ``night``: a nightly build on a warehouse that holds a complete, fully tested build.
    Then every generic test on an incremental model reads only the rows of the night's
    dates (``night_from`` turns on the ``where`` config in the models' yml, see
    ``dbt_project.yml`` and ``macros/run_dates.sql``), the tests tagged ``full_history``
    and the dbt unit tests are left out. Otherwise (first build, ``--full-refresh``, a
    failed or interrupted build before) everything is tested on every row.
    ``reload_seeds``: the seed files changed since the warehouse loaded them (or a full
    refresh).
    ``views_current``: on a night, the warehouse's views were created from the same project
    files (:func:`project_checksum`) and are all there: they are not created again. A view
    holds no data, so re-creating an unchanged one changes nothing; its tests are tagged
    ``full_history`` and do not run on a night either.
    """

    night: bool
    reload_seeds: bool
    views_current: bool = False

    def dbt_args(self) -> list[str]:
        """``dbt build``'s arguments that leave out what the plan does not run."""
        args = []
        excluded = []
        skipped = []
        if self.night:  # dbt's advice: unit tests belong to development and CI, not to production nights
            excluded.append(f"tag:{FULL_HISTORY_TAG}")
            skipped.append("unit_test")
        if self.night and self.views_current:
            excluded.append(VIEWS)
        if excluded:
            args += ["--exclude", *excluded]
        if not self.reload_seeds:
            skipped.append("seed")
        if skipped:
            args += ["--exclude-resource-type", *skipped]
        return args


#: dbt's selector for the project's views
VIEWS = "config.materialized:view"


def plan_tests(
    state: dict[str, str],
    seeds: str,
    full_refresh: bool,
    project: str | None = None,
    views_there: bool = False,
) -> TestPlan:
    """The nodes of a build: nightly scope only after a build that tested everything succeeded.

    ``project``: :func:`project_checksum` now; ``views_there``: every view the last
    successful build left (``ops.dbt_state``) exists.
    """
    tested_in_full = state.get(dbt_state.TESTED_IN_FULL) == "true"
    night = tested_in_full and not full_refresh
    return TestPlan(
        night=night,
        reload_seeds=full_refresh or state.get(dbt_state.SEEDS_SHA256) != seeds,
        views_current=night
        and project is not None
        and state.get(dbt_state.VIEWS_SHA256) == project
        and views_there,
    )


def build(
    url: str,
    business_date: date,
    start_date: date | None = None,
    full_refresh: bool = False,
    *,
    log_dir: Path | None = None,
    artifacts: bool = False,
) -> DbtResult:
    """``dbt build`` (seeds, models, tests) for the night ``business_date``.

    ``log_dir``: dbt's log goes to ``<log_dir>/dbt.log`` instead of the console.
    ``artifacts``: write ``target/manifest.json`` and ``run_results.json`` (OpenLineage reads
    them). Without it they are written only when the manifest is older than the project's
    files (:func:`manifest_is_current`): serialising the whole manifest costs a small night
    about a second, and the result returned carries every node that ran.

    A night costs what the night delivered: :func:`plan_tests` decides from
    ``ops.dbt_state`` whether tests read only the night's rows and which tests and seeds
    are left out; a first build and a ``full_refresh`` build and test everything.
    """
    seeds = seeds_checksum()
    project = project_checksum()
    with psycopg.connect(url) as conn:
        state = dbt_state.read_state(conn)
        views_there = dbt_state.relations_exist(conn, dbt_state.view_relations(state))
        plan = plan_tests(state, seeds, full_refresh, project, views_there)
    night = night_environment(
        business_date, start_date, (start_date or business_date) if plan.night else None
    )
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    args += plan.dbt_args()
    if not artifacts and manifest_is_current():
        args.append("--no-write-json")
    if log_dir is not None:
        args += ["--log-path", str(log_dir), "--log-level", "none", "--log-level-file", "info"]
    result = run_dbt(args, url, night)
    if result.success:
        with psycopg.connect(url) as conn:
            dbt_state.save_state(
                conn,
                {
                    dbt_state.SEEDS_SHA256: seeds,
                    dbt_state.TESTED_IN_FULL: "true",
                    dbt_state.VIEWS_SHA256: project,
                    dbt_state.VIEW_RELATIONS: json.dumps(manifest_views()),
                },
            )
    return result


#: environment variables that carry a build's dates to dbt (``macros/run_dates.sql``): read
#: only while dbt executes, so that a new night keeps dbt's partial parse (new ``--vars``
#: would make dbt re-parse the whole project, about 4 s a night)
NIGHT_ENV = {
    "run_date": "QUDAO_DBT_RUN_DATE",
    "start_date": "QUDAO_DBT_START_DATE",
    "night_from": "QUDAO_DBT_NIGHT_FROM",
}


def night_environment(run_date: date, start_date: date | None, night_from: date | None) -> dict[str, str]:
    """The night's dates for dbt: the dates to recompute, and the first date the tests read.

    A date not given is set empty (not inherited from the caller's environment).
    """
    values = {"run_date": run_date, "start_date": start_date, "night_from": night_from}
    return {NIGHT_ENV[k]: v.isoformat() if v else "" for k, v in values.items()}


def seeds_checksum() -> str:
    """SHA-256 over the seed files' names and bytes (and their YAML)."""
    digest = hashlib.sha256()
    for path in sorted(settings().dbt_project_dir.joinpath("seeds").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


#: what the SQL of a view is made of, besides dbt itself (paths in the project)
VIEW_INPUTS = ("models", "macros", "dbt_project.yml")


def project_checksum() -> str:
    """SHA-256 over the files a view's definition is compiled from (:data:`VIEW_INPUTS`, the
    profile) and the versions of dbt and its adapter: equal checksums, equal views."""
    cfg = settings()
    digest = hashlib.sha256()
    for package in ("dbt-core", "dbt-postgres"):
        digest.update(f"{package}=={metadata.version(package)}\0".encode())
    paths = [cfg.dbt_project_dir / name for name in VIEW_INPUTS]
    paths.append(cfg.dbt_profiles_dir / "profiles.yml")
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            digest.update(f.relative_to(path.parent).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def manifest_views() -> list[str]:
    """The project's views as ``"schema"."name"``, from the manifest the last dbt command wrote."""
    nodes = json.loads(manifest_path().read_text(encoding="utf-8")).get("nodes", {}).values()
    return sorted(
        f'"{n["schema"]}"."{n["alias"]}"'
        for n in nodes
        if n.get("resource_type") == "model" and (n.get("config") or {}).get("materialized") == "view"
    )


def parse() -> Path:
    """``dbt parse`` with no database: writes ``target/manifest.json`` and returns its path."""
    result = run_dbt(["parse"], None)
    if not result.success:
        raise RuntimeError("dbt parse failed:\n" + "\n".join(result.failures))
    return manifest_path()


def manifest_path() -> Path:
    return settings().dbt_project_dir / "target" / "manifest.json"


#: folders of the project that dbt writes, not reads
_OUTPUT_DIRS = ("target", "logs", "dbt_packages")


def manifest_is_current() -> bool:
    """``target/manifest.json`` was written after every file dbt parses last changed.

    The gate and publishing read the manifest; a build that leaves it unwritten must not
    leave an older project's there.
    """
    path = manifest_path()
    if not path.is_file():
        return False
    written = path.stat().st_mtime_ns
    cfg = settings()
    inputs = [cfg.dbt_profiles_dir / "profiles.yml"]
    for top in cfg.dbt_project_dir.iterdir():
        if top.name in _OUTPUT_DIRS:
            continue
        inputs += [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
    return all(p.stat().st_mtime_ns < written for p in inputs if p.exists())


def docs_dir() -> Path:
    """Where ``qudao docs`` writes the site: its own folder, not the nightly build's ``target/`` files."""
    return settings().dbt_project_dir / "target" / "docs"


def docs(url: str) -> Path:
    """Generate the dbt docs site of the published schema; returns the ``index.html`` path.

    dbt builds the marts into ``marts_candidate``; the var ``published_docs`` names them
    in ``marts`` (``macros/generate_schema_name.sql``), where analysts query them, so the
    docs and their catalog describe those relations. The site has its own target path:
    ``target/manifest.json`` stays the nightly build's (publishing reads it).
    """
    target = docs_dir()
    args = ["docs", "generate", "--vars", "{published_docs: true}", "--target-path", str(target)]
    result = run_dbt(args, url)
    if not result.success:
        raise RuntimeError("dbt docs generate failed:\n" + "\n".join(result.failures))
    return target / "index.html"
