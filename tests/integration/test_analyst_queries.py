"""docs/analysts.md works: every example query runs as a ``bi_reader`` login on freshly built marts.

One warehouse for the module: two nights of generated extracts, loaded, built
with dbt, published, after ``ensure_roles`` (so every mart is first created after
the grants, like a later night's new mart). The same warehouse proves that no
value a reader can see looks like a phone number.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from psycopg import errors, sql

from qudao.config import PROJECT_ROOT
from qudao.warehouse.connection import with_database
from qudao.warehouse.roles import ANALYST, BI_READER, create_login, drop_login, ensure_roles
from qudao.warehouse.schema import ensure_schema

pytestmark = pytest.mark.integration

DOC = PROJECT_ROOT / "docs" / "analysts.md"
D1, D2 = date(2026, 11, 8), date(2026, 11, 9)  # a Sunday and a Monday: two ISO weeks
#: a mainland mobile number, once spaces, dashes and brackets are removed, not inside a longer token
PHONE = r"(^|[^0-9A-Za-z])(\+|00)?(86)?1[3-9][0-9]{9}([^0-9A-Za-z]|$)"
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")
PII_KEY = uuid.uuid4().hex  # the HMAC key of this module's warehouse


def example_queries() -> list[tuple[str, list[str], str]]:
    """(title, expected columns, SQL) of every ```sql block of docs/analysts.md."""
    text = DOC.read_text(encoding="utf-8")
    out = []
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0]
        for query in re.findall(r"^```sql\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
            columns = re.search(r"^-- columns: (.+)$", query, re.MULTILINE)
            assert columns, f"{title}: no '-- columns:' line"
            out.append((title, [c.strip() for c in columns.group(1).split(",")], query))
    return out


QUERIES = example_queries()


def _as_user(url: str, user: str) -> str:
    return re.sub(r"://[^@/]*@", f"://{user}@", url, count=1)


@pytest.fixture(scope="module")
def built_warehouse(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a database with two published nights; dropped afterwards."""
    from qudao.ingest import load_date
    from qudao.publish import publish
    from qudao.transform import manifest_path, run_dbt
    from qudao_demo import generate

    tmp = tmp_path_factory.mktemp("analysts")
    name = f"qudao_t_analysts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    # A private copy of the dbt project: its target/ is not shared with other dbt runs.
    project = tmp / "dbt_project"
    shutil.copytree(
        PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUDAO_HOME", str(tmp / "home"))
        mp.setenv("QUDAO_DBT_PROJECT_DIR", str(project))
        mp.setenv("QUDAO_PII_KEY", PII_KEY)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                ensure_schema(conn)
                ensure_roles(conn)
            landing = tmp / "landing"
            generate(str(landing), D1, D2, scale="small", seed=42)
            for night in (D1, D2):
                assert load_date(url, str(landing), night).ok
            # what qudao.transform.build runs, without dbt's tests: they have tests of their own,
            # and a failing one would skip the marts this module is about
            nights = f"{{run_date: '{D2}', start_date: '{D1}'}}"
            result = run_dbt(["build", "--vars", nights, "--exclude-resource-type", "test", "unit_test"], url)
            assert result.success, result.lines()
            # the quality gate has tests of its own; here only what analysts see matters
            publish(url, [D1, D2], "analysts-test", manifest_path(), require_gate=False)
            yield url
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
                )
                admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def as_role(built_warehouse: str) -> Iterator[dict[str, psycopg.Connection]]:
    """Connections as fresh LOGIN users in ``bi_reader`` and ``analyst``."""
    users = {role: f"qudao_t_{role}_{uuid.uuid4().hex[:8]}" for role in (BI_READER, ANALYST)}
    with psycopg.connect(built_warehouse, autocommit=True) as admin:
        for role, user in users.items():
            create_login(admin, user, role)
        conns = {
            role: psycopg.connect(_as_user(built_warehouse, user), autocommit=True)
            for role, user in users.items()
        }
        try:
            yield conns
        finally:
            for c in conns.values():
                c.close()
            for user in users.values():
                drop_login(admin, user)


def test_the_guide_has_at_least_eight_questions() -> None:
    assert len(QUERIES) >= 8
    assert all(q.lstrip().startswith("-- columns:") for _, _, q in QUERIES)


@pytest.mark.parametrize(("title", "columns", "query"), QUERIES, ids=[t.split(".")[0] for t, _, _ in QUERIES])
def test_example_query_answers_as_bi_reader(
    as_role: dict[str, psycopg.Connection], title: str, columns: list[str], query: str
) -> None:
    cur = as_role[BI_READER].execute(query)
    rows = cur.fetchall()
    assert [d.name for d in cur.description] == columns, title
    assert rows, f"{title}: no rows"
    assert any(v is not None for row in rows for v in row[1:]), f"{title}: only empty values"


def test_every_published_mart_is_readable_by_bi_and_nothing_else_is(
    built_warehouse: str, as_role: dict[str, psycopg.Connection]
) -> None:
    bi = as_role[BI_READER]
    with psycopg.connect(built_warehouse) as admin:
        marts = [r[0] for r in admin.execute("select tablename from pg_tables where schemaname = 'marts'")]
    assert {"mart_channel_coverage", "mart_visit_compliance", "dim_partner", "fct_calls"} <= set(marts)
    for table in marts:
        bi.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier("marts", table)))
    for relation in (
        "raw.crm__partners",
        "ops.load_manifest",
        "staging.stg_crm__partners",
        "marts_candidate.dim_partner",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            bi.execute(f"select 1 from {relation} limit 1")
    with pytest.raises(errors.InsufficientPrivilege):
        bi.execute("delete from marts.dim_region")


def test_analyst_reads_staging_but_never_a_phone_or_a_hash_with_their_own_key(
    as_role: dict[str, psycopg.Connection],
) -> None:
    analyst = as_role[ANALYST]
    assert analyst.execute("select count(*) from staging.stg_crm__partners").fetchone()[0] > 0
    with pytest.raises(errors.InsufficientPrivilege):
        analyst.execute("select 1 from raw.crm__partners limit 1")
    analyst.execute("set qudao.pii_key = 'a key the analyst chose'")
    with pytest.raises(errors.InsufficientPrivilege):  # the base view hashes at query time
        analyst.execute("select contact_phone_hash from staging.base_crm__partners limit 1")
    # the stg_ view reads the hashes dbt stored (staging's deliveries table), not the analyst's key's
    staged = {r[0] for r in analyst.execute("select contact_phone_hash from staging.stg_crm__partners")}
    versions = "select contact_phone_hash from intermediate.int_partners__versions"
    assert staged - {None} and staged <= {r[0] for r in analyst.execute(versions)}
    stored = analyst.execute("select count(distinct contact_phone_hash) from marts.dim_partner").fetchone()[0]
    assert stored > 0  # the stored hashes are there to count and join with


def _phone_like(conn: psycopg.Connection, schemas: tuple[str, ...]) -> dict[str, int]:
    """``schema.table.column`` -> number of values that look like a phone number."""
    columns = conn.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema = any(%s) and c.data_type = any(%s) order by 1, 2, 3",
        (list(schemas), list(TEXT_TYPES)),
    ).fetchall()
    assert columns
    found = {}
    for schema, table, column in columns:
        n = conn.execute(
            sql.SQL(
                "select count(*) from {} where regexp_replace({}::text, '[[:space:]()-]', '', 'g') ~ %s"
            ).format(sql.Identifier(schema, table), sql.Identifier(column)),
            (PHONE,),
        ).fetchone()[0]
        if n:
            found[f"{schema}.{table}.{column}"] = n
    return found


def test_no_value_outside_raw_looks_like_a_phone_number(built_warehouse: str) -> None:
    with psycopg.connect(built_warehouse, autocommit=True) as conn:
        conn.execute(
            "select set_config('qudao.pii_key', %s, false)", (PII_KEY,)
        )  # staging views hash when read
        in_raw = _phone_like(conn, ("raw",))
        assert "raw.crm__partners.contact_phone" in in_raw  # the scan does find phones
        assert _phone_like(conn, ("marts", "marts_candidate", "intermediate", "staging")) == {}
