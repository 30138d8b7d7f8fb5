"""The production deployment files, checked without a Docker engine, and no committed secrets.

There is no Docker engine where this suite runs, so ``docker compose up`` cannot
prove the compose file. These tests parse it (PyYAML) and check what the compose
specification and Airflow's official 3.x compose file require of it; where a
Docker CLI with the compose plugin exists, ``docker compose config`` validates it
too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from qudao.config import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
LOCK = PROJECT_ROOT / "requirements.lock"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
LONG_RUNNING = (*AIRFLOW_SERVICES, "airflow-db", "redis", "warehouse-db")
#: top-level keys of the compose specification and keys a service may have (the subset in use)
TOP_LEVEL_KEYS = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose",
    "healthcheck", "restart", "depends_on", "user", "profiles", "deploy", "networks", "labels", "init",
    "stop_grace_period", "working_dir", "container_name", "logging", "secrets", "configs", "shm_size",
}  # fmt: skip
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def _paths(volume: str) -> tuple[str, str]:
    """(source, target) of a short-syntax volume; ``${VAR:-default}`` counts as one source."""
    source, target = VARIABLE.sub("VAR", volume).split(":")[:2]
    return (volume.split(":", 1)[0] if source == "VAR" else source), target


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so keys can be checked"
    return {k: str(v) for k, v in env.items()}


def _locked(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", LOCK.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in requirements.lock"
    return match.group(1)


def _env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def test_compose_follows_the_specification_shape() -> None:
    doc = _compose()
    extensions = {k for k in doc if k.startswith("x-")}  # the spec's extension fields (anchors)
    assert set(doc) - extensions <= TOP_LEVEL_KEYS, set(doc) - TOP_LEVEL_KEYS
    for name, service in doc["services"].items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in doc["services"], (name, dependency)
            assert condition["condition"] in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
        for volume in service.get("volumes", []):
            source, target = _paths(volume)
            assert target.startswith("/"), (name, volume)
            if not source.startswith((".", "/", "$")):
                assert source in (doc.get("volumes") or {}), f"{name}: undeclared named volume {source}"


def test_every_component_of_a_celery_deployment_is_there() -> None:
    services = _services()
    for name in (*LONG_RUNNING, "airflow-init", "flower"):
        assert name in services, name
    commands = {name: str(services[name].get("command")) for name in AIRFLOW_SERVICES}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    assert services["flower"]["command"] == "celery flower"
    assert services["flower"]["profiles"] == ["flower"]  # optional


def test_every_airflow_container_runs_the_celery_executor_against_postgres_and_redis() -> None:
    services = _services()
    for name in (*AIRFLOW_SERVICES, "airflow-init", "flower"):
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@airflow-db:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert (
            env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
            and "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"]
        ), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert "@warehouse-db:5432/" in env["QUDAO_WAREHOUSE_URL"], name  # the separate warehouse
        for shared in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "QUDAO_PII_KEY"):
            assert env[shared].startswith("${"), (name, shared)  # same value everywhere, from .env
        volumes = {_paths(v)[1] for v in services[name]["volumes"]}
        assert {
            "/opt/qudao/dags",
            "/opt/qudao/include",
            "/opt/qudao/dbt_project",
            "/opt/qudao/landing",
        } <= volumes


def test_workers_can_be_scaled_out() -> None:
    worker = _services()["airflow-worker"]
    assert "container_name" not in worker  # a fixed name allows one replica only
    assert not worker.get("ports")  # a fixed host port allows one replica only
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks_and_wait_for_init() -> None:
    services = _services()
    for name in (*LONG_RUNNING, "flower"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert services[name].get("restart") == "always", name
    for name in (*AIRFLOW_SERVICES, "flower"):
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        for infra in ("airflow-db", "redis", "warehouse-db"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)


def test_init_migrates_creates_the_admin_and_initialises_the_warehouse() -> None:
    init = _services()["airflow-init"]
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow db migrate" in script
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script and "AIRFLOW_ADMIN_PASSWORD" in script
    assert "qudao warehouse init" in script
    assert "create_login" in script and "BI_READER" in script
    assert "$" not in script.replace("$$", ""), "unescaped $ would be interpolated by compose"


def test_the_warehouse_is_a_separate_postgres_with_its_own_volume() -> None:
    services = _services()
    meta, warehouse = services["airflow-db"], services["warehouse-db"]
    assert meta["image"].startswith("postgres:") and warehouse["image"].startswith("postgres:")
    assert _paths(meta["volumes"][0])[0] != _paths(warehouse["volumes"][0])[0]
    assert "ports" not in meta  # the metadata database is never exposed
    (port,) = warehouse["ports"]
    assert port.startswith("${WAREHOUSE_BIND:-127.0.0.1}:")  # private by default


def test_no_literal_secrets_in_the_compose_file() -> None:
    secret_key = re.compile(r"(PASSWORD|SECRET|FERNET|PII_KEY|TOKEN|BASIC_AUTH)", re.IGNORECASE)

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if (
                    secret_key.search(str(k))
                    and not str(k).endswith("_FILE")
                    and not isinstance(v, dict | list)
                ):
                    value = str(v)
                    assert VARIABLE.fullmatch(value), f"{path}.{k} = {value!r}: not from the environment"
                    assert VARIABLE.fullmatch(value).group(3) in (None, "") or VARIABLE.fullmatch(
                        value
                    ).group(2) in (":?", "?"), f"{path}.{k} has a default value"
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, str):
            # credentials inside URLs: user:password@host must be a variable
            for m in re.finditer(r"://[^/\s:@]*:([^@\s]+)@", node):
                assert VARIABLE.fullmatch(m.group(1)), f"{path}: literal password in a URL"

    walk(_compose(), "compose")
    text = COMPOSE.read_text()
    assert "--requirepass ${REDIS_PASSWORD:?" in text.replace('", "', " ")


def test_every_variable_the_compose_file_reads_is_documented_in_env_example() -> None:
    used = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text().replace("$$", ""))}
    documented = _env_example_names()
    assert used - documented == set(), "missing from .env.example"
    required = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_PASSWORD", "REDIS_PASSWORD", "QUDAO_PII_KEY"} <= required


def test_env_example_holds_placeholders_only_and_a_comment_for_every_setting() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            continue
        name, value = m.groups()
        if re.search(r"PASSWORD|SECRET|FERNET|PII_KEY|TOKEN", name) and not name.endswith("_USER"):
            assert value in ("", "<change-me>"), f"{name} has a value in .env.example"
        block = lines[max(0, i - 12) : i]
        assert any(b.startswith("#") for b in block), f"{name} has no comment above it"
    # every QUDAO_* setting the code reads is listed
    read = set()
    for path in [*(PROJECT_ROOT / "include" / "qudao").rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]:
        read |= set(re.findall(r"\"(QUDAO_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    read = {n for n in read if not n.startswith("QUDAO_DBT_")}  # derived from the warehouse URL
    assert read - _env_example_names() == set()


def test_images_match_the_locked_airflow_version() -> None:
    airflow = _locked("apache-airflow")
    text = DOCKERFILE.read_text()
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(airflow)}$", text, re.MULTILINE)
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python3\.11$", text, re.MULTILINE)
    assert "-r /opt/qudao/requirements.lock" in text and "pip install --no-cache-dir --no-deps -e" in text
    common = _services()["airflow-scheduler"]
    assert str(common["build"]["args"]["AIRFLOW_VERSION"]) == airflow
    assert common["image"].endswith(f":{airflow}}}") or common["image"].endswith(f":{airflow}")
    for ref in re.findall(r"apache/airflow:([\w.\-${}]+)", COMPOSE.read_text() + text):
        assert ref.startswith((airflow, "${AIRFLOW_VERSION}")), ref


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".qudao", "data", ".git"} <= ignored


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no Docker CLI with the compose plugin here: the file is checked by the tests above",
)
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(ENV_EXAMPLE.read_text().replace("<change-me>", "0123456789abcdef"))
    done = subprocess.run(
        ["docker", "compose", "--env-file", str(env), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr


# --- no secrets in the repository ---------------------------------------------------------

#: patterns of committed secrets; each match must be a placeholder or an environment reference
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@"),
    "password assignment": re.compile(
        r"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token|fernet_key|pii_key)\b"
        r"\s*[:=]\s*['\"]?([^\s'\"`,;)}]+)"
    ),
}
#: values that are not secrets: placeholders and references to the environment or templates
_PLACEHOLDER = re.compile(
    r"""^(|<[^>]*>.*|…|\*+|x+|changeme|change-me|\$\{?[A-Za-z_][A-Za-z0-9_]*.*|\{\{.*|%\(.*|\{.*)$""",
    re.IGNORECASE,
)
#: in an assignment, also code: a name, an attribute, a call, a subscript, a keyword, a small number
_CODE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*(\(.*|\[.*)?|-?\d{1,4})$")
TEXT_SUFFIXES = {
    ".py", ".sql", ".yml", ".yaml", ".md", ".toml", ".cfg", ".ini", ".txt", ".json", ".sh", ".env",
    ".example", ".lock", ".csv", "",
}  # fmt: skip
SKIP_DIRS = {
    ".git",
    ".venv",
    ".qudao",
    "data",
    "__pycache__",
    "target",
    "logs",
    "dbt_packages",
    "node_modules",
}


def _committed_text_files() -> list[Path]:
    """Files git tracks (or would: untracked and not ignored); without git, a walk of the tree."""
    git = shutil.which("git")
    if git:
        done = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            capture_output=True,
            cwd=PROJECT_ROOT,
        )
        if done.returncode == 0 and done.stdout:
            paths = [PROJECT_ROOT / p for p in done.stdout.decode().split("\0") if p]
            return [p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return [
        p
        for p in PROJECT_ROOT.rglob("*")
        if p.is_file()
        and p.suffix in TEXT_SUFFIXES
        and not SKIP_DIRS.intersection(p.relative_to(PROJECT_ROOT).parts)
    ]


def find_secrets(text: str) -> list[tuple[str, str]]:
    """(kind, match) of everything in ``text`` that looks like a committed secret."""
    found = []
    for kind, pattern in SECRET_PATTERNS.items():
        for m in pattern.finditer(text):
            if pattern.groups:
                value = m.group(1).strip().rstrip(".")
                if _PLACEHOLDER.match(value) or (kind == "password assignment" and _CODE.match(value)):
                    continue
            found.append((kind, m.group(0)))
    return found


def test_the_secret_scan_recognises_secrets_and_placeholders() -> None:
    bad = (
        "password = 'hunter2hunter2'\n"
        "url: postgresql://qudao:s3cr3tPass@db:5432/qudao\n"
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "AWS_KEY=AKIAIOSFODNN7EXAMPLE\n"
        "token: xoxb-123456789012-abcdefghijkl\n"
    )
    assert {k for k, _ in find_secrets(bad)} == {
        "password assignment",
        "password in a URL",
        "private key",
        "AWS access key",
        "Slack token",
    }
    good = (
        "WAREHOUSE_PASSWORD=<change-me>\n"
        "password: ${WAREHOUSE_PASSWORD:?set it}\n"
        "url: postgresql://qudao:${WAREHOUSE_PASSWORD}@warehouse-db:5432/qudao\n"
        "password=os.environ['X']\n"
        "smtp_password=env.get('QUDAO_SMTP_PASSWORD')\n"
        "export QUDAO_WAREHOUSE_URL=postgresql://qudao:…@db.example.com:5432/qudao\n"
        "create role alice login password '<a password>' in role analyst;\n"
    )
    assert find_secrets(good) == []


def test_no_secrets_are_committed() -> None:
    files = _committed_text_files()
    assert any(p.name == "docker-compose.yaml" for p in files)
    leaks = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(PROJECT_ROOT)
        for kind, match in find_secrets(text):
            # this file's own examples of what a leak looks like
            if rel == Path(__file__).relative_to(PROJECT_ROOT):
                continue
            leaks.append(f"{rel}: {kind}: {match[:80]}")
    assert leaks == []
