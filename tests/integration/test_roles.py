"""Roles and grants on a real server: what each group role may read and write.

Group roles are cluster-wide and shared with other tests (never dropped here);
every test logs in as its own uniquely named LOGIN users, dropped afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from psycopg import errors

from qudao.warehouse.roles import (
    ANALYST,
    BI_READER,
    GROUP_ROLES,
    LOADER,
    OPERATOR,
    TRANSFORMER,
    create_login,
    drop_login,
    ensure_roles,
)

pytestmark = pytest.mark.integration

Login = Callable[[str], psycopg.Connection]


def _as_user(url: str, user: str) -> str:
    parsed = urlparse(url)
    host = parsed.netloc.rsplit("@", 1)[-1]
    return urlunparse(parsed._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def warehouse(conn: psycopg.Connection) -> psycopg.Connection:
    """A database with a mart published before the grants, then the roles, then a new mart."""
    conn.execute("create table marts.mart_before (k int primary key, v text)")
    conn.execute("insert into marts.mart_before values (1, '旧'), (2, 'old')")
    conn.execute("create table staging.stg_partner (k int)")
    conn.execute("create table intermediate.int_partner (k int)")
    conn.execute("insert into staging.stg_partner values (7)")
    ensure_roles(conn)
    # A later night publishes a mart that did not exist when the grants were set,
    # as the user publishing connects with.
    conn.execute("create table marts.mart_after (k int, v text)")
    conn.execute("insert into marts.mart_after values (3, '新')")
    return conn


@pytest.fixture
def login(db_url: str, warehouse: psycopg.Connection) -> Iterator[Login]:
    """Factory: a connection to the test database as a fresh LOGIN user in a group role."""
    users: list[str] = []
    conns: list[psycopg.Connection] = []

    def connect_as(role: str) -> psycopg.Connection:
        name = f"qudao_t_{role}_{uuid.uuid4().hex[:8]}"
        create_login(warehouse, name, role)
        users.append(name)
        c = psycopg.connect(_as_user(db_url, name), autocommit=True)
        conns.append(c)
        return c

    yield connect_as
    for c in conns:
        c.close()
    for name in users:
        drop_login(warehouse, name)


def _refused(c: psycopg.Connection, statement: str) -> bool:
    try:
        c.execute(statement)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_group_roles_exist_without_login(warehouse: psycopg.Connection) -> None:
    rows = warehouse.execute(
        "select rolname, rolcanlogin from pg_roles where rolname = any(%s) order by rolname",
        (list(GROUP_ROLES),),
    ).fetchall()
    assert rows == sorted((r, False) for r in GROUP_ROLES)


def test_bi_reader_reads_every_mart_including_one_created_after_the_grants(login: Login) -> None:
    bi = login(BI_READER)
    assert bi.execute("select current_user").fetchone()[0].startswith("qudao_t_bi_reader_")
    assert bi.execute("select k, v from marts.mart_before order by k").fetchall() == [(1, "旧"), (2, "old")]
    assert bi.execute("select k, v from marts.mart_after").fetchall() == [(3, "新")]
    marts = [r[0] for r in bi.execute("select tablename from pg_tables where schemaname = 'marts'")]
    assert sorted(marts) == ["mart_after", "mart_before"]
    for table in marts:
        assert bi.execute(f"select count(*) from marts.{table}").fetchone()[0] > 0


def test_bi_reader_is_refused_outside_marts_and_on_any_write(login: Login) -> None:
    bi = login(BI_READER)
    for table in ("raw.crm__partners", "ops.load_manifest", "ops.run_log", "staging.stg_partner"):
        assert _refused(bi, f"select * from {table}"), table
    assert _refused(bi, "select * from intermediate.int_partner")
    for statement in (
        "insert into marts.mart_before values (9, 'x')",
        "update marts.mart_before set v = 'x'",
        "delete from marts.mart_before",
        "truncate marts.mart_after",
        "create table marts.sneaky (k int)",
        "create table public.sneaky (k int)",
    ):
        assert _refused(bi, statement), statement
    assert bi.execute("select count(*) from marts.mart_before").fetchone()[0] == 2


def test_analyst_reads_modelled_schemas_but_not_raw_or_ops(login: Login) -> None:
    analyst = login(ANALYST)
    assert analyst.execute("select k from staging.stg_partner").fetchall() == [(7,)]
    assert analyst.execute("select count(*) from intermediate.int_partner").fetchone()[0] == 0
    assert analyst.execute("select count(*) from marts.mart_after").fetchone()[0] == 1
    assert _refused(analyst, "select * from raw.crm__partners")
    assert _refused(analyst, "select * from ops.load_manifest")
    assert _refused(analyst, "delete from marts.mart_before")


def test_grants_survive_a_delete_insert_publish(warehouse: psycopg.Connection, login: Login) -> None:
    bi = login(BI_READER)
    with warehouse.transaction():
        warehouse.execute("delete from marts.mart_before")
        warehouse.execute("insert into marts.mart_before values (10, 'published')")
    assert bi.execute("select k, v from marts.mart_before").fetchall() == [(10, "published")]
    ensure_roles(warehouse)  # the next night re-applies everything: harmless
    assert bi.execute("select k, v from marts.mart_before").fetchall() == [(10, "published")]


def test_loader_writes_raw_and_ops_but_not_marts(login: Login) -> None:
    loader = login(LOADER)
    load_id = loader.execute(
        "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256, size_bytes,"
        " status) values ('crm', 'partner', '2026-11-01', 'p', 'f', 's', 1, 'loading') returning load_id"
    ).fetchone()[0]
    assert load_id >= 1
    loader.execute("delete from ops.load_manifest where load_id = %s", (load_id,))
    assert _refused(loader, "select * from marts.mart_before")
    assert _refused(loader, "select * from staging.stg_partner")


def test_transformer_reads_raw_and_its_new_marts_are_readable_by_bi(login: Login) -> None:
    dbt = login(TRANSFORMER)
    assert dbt.execute("select current_user").fetchone()[0] == TRANSFORMER  # acts as the group role
    assert dbt.execute("select count(*) from raw.crm__partners").fetchone()[0] == 0
    assert _refused(
        dbt, "insert into ops.run_log (run_id, business_date, step, status) values ('r', now(), 's', 'x')"
    )
    dbt.execute("create table marts_candidate.mart_new as select 5 as k")
    dbt.execute("create table marts.mart_new as select * from marts_candidate.mart_new")
    dbt.execute("insert into marts.mart_before values (4, 'by dbt')")
    bi = login(BI_READER)
    assert bi.execute("select k from marts.mart_new").fetchall() == [(5,)]
    assert _refused(bi, "select * from marts_candidate.mart_new")
    assert login(ANALYST).execute("select count(*) from marts.mart_new").fetchone()[0] == 1
    dbt.execute("drop table marts.mart_new, marts_candidate.mart_new")  # owned by the group role


def test_ensure_roles_is_idempotent_and_safe_concurrently(db_url: str, warehouse: psycopg.Connection) -> None:
    errors_seen: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(db_url) as c:
                ensure_roles(c)
        except BaseException as e:  # collected and asserted below
            errors_seen.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == []
    ok = warehouse.execute(
        "select has_table_privilege('bi_reader', 'marts.mart_after', 'select'),"
        " has_table_privilege('bi_reader', 'ops.run_log', 'select'),"
        " has_table_privilege('analyst', 'raw.crm__partners', 'select'),"
        " has_table_privilege('qudao_transformer', 'raw.crm__partners', 'select')"
    ).fetchone()
    assert ok == (True, False, False, True)


def test_only_the_transformer_may_hash_phones(conn: psycopg.Connection, login: Login) -> None:
    """A reader who could call the HMAC with a key of their own could brute-force the phones."""
    conn.execute("create table raw.phones as select 'A1' as partner_id, '138 0013 8000' as contact_phone")
    conn.execute(  # what dbt's staging views do
        "create view staging.stg_phone as select partner_id,"
        " ops.hmac_sha256_hex(contact_phone, current_setting('qudao.pii_key')) as contact_phone_hash"
        " from raw.phones"
    )
    ensure_roles(conn)  # dbt recreates its views every night; the function's grant is what holds
    analyst = login(ANALYST)
    analyst.execute("set qudao.pii_key = 'a key the analyst knows'")
    assert analyst.execute("select partner_id from staging.stg_phone").fetchall() == [("A1",)]
    assert _refused(analyst, "select contact_phone_hash from staging.stg_phone")
    assert _refused(login(BI_READER), "select ops.hmac_sha256_hex('13800138000', 'k')")
    dbt = login(TRANSFORMER)
    dbt.execute("set qudao.pii_key = 'k'")
    (digest,) = dbt.execute("select contact_phone_hash from staging.stg_phone").fetchone()
    assert len(digest) == 64 and "13800138000" not in digest
    public = conn.execute(
        "select has_function_privilege('public', 'ops.hmac_sha256_hex(text, text)', 'execute')"
    ).fetchone()[0]
    assert public is False


@pytest.mark.parametrize("role", [ANALYST, BI_READER, OPERATOR])
def test_readers_create_no_temporary_tables_functions_or_large_objects(login: Login, role: str) -> None:
    reader = login(role)
    for statement in (
        "create temp table scratch (k int)",
        "create temporary view scratch as select 1 as k",
        "create function pg_temp.f() returns int language sql as 'select 1'",
        "select lo_create(0)",
        "select lo_creat(-1)",
        "select lo_from_bytea(0, 'secret'::bytea)",
        "select lo_import('/etc/passwd')",
    ):
        assert _refused(reader, statement), (role, statement)
    assert reader.execute("select count(*) from pg_largeobject_metadata").fetchone()[0] == 0


@pytest.mark.parametrize("role", [LOADER, TRANSFORMER])
def test_the_platforms_writers_keep_temporary_tables(login: Login, role: str) -> None:
    writer = login(role)
    writer.execute("create temp table scratch as select 1 as k")  # dbt's incremental models, publishing
    assert writer.execute("select k from scratch").fetchall() == [(1,)]


def test_a_reader_cannot_change_other_roles_or_superuser_settings(login: Login) -> None:
    bi = login(BI_READER)
    other = login(ANALYST).execute("select current_user").fetchone()[0]
    for statement in (
        f"alter role {BI_READER} set search_path = public",  # the group role every BI login is in
        f"alter role {other} set search_path = public",
        f"alter role {ANALYST} set work_mem = '1GB'",
        "alter role current_user set session_preload_libraries = 'auto_explain'",
        "alter role current_user set log_statement = 'none'",
        "alter role current_user connection limit 1000",
        "alter role current_user createdb",
    ):
        assert _refused(bi, statement), statement


def test_a_readers_own_session_defaults_stay_its_own(db_url: str, login: Login) -> None:
    """PostgreSQL lets every role set its own session defaults; they reach no other login."""
    bi = login(BI_READER)
    bi.execute("alter role current_user set search_path = marts")  # allowed: cannot be prevented
    me = bi.execute("select current_user").fetchone()[0]
    settings = bi.execute(
        "select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
        " where r.rolname in (%s, %s, %s)",
        (me, BI_READER, ANALYST),
    ).fetchall()
    assert settings == [(me, ["search_path=marts"])]
    assert login(BI_READER).execute("show search_path").fetchone()[0] == '"$user", public'
