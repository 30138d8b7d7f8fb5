"""Group roles and grants: who may read and write which warehouse schema.

=====================  ==========================================================
role (NOLOGIN)         privileges
=====================  ==========================================================
``qudao_loader``       reads and writes ``raw`` and ``ops`` (the loaders)
``qudao_transformer``  reads ``raw`` and ``ops``; writes ``staging``,
                       ``intermediate``, ``marts_candidate`` and ``marts`` (dbt,
                       publishing)
``analyst``            reads ``staging``, ``intermediate`` and ``marts``
``bi_reader``          reads ``marts`` only (dashboards)
``qudao_operator``     reads every schema, writes nothing (what ``qudao sql``
                       runs as unless ``--write``)
=====================  ==========================================================

Only the platform's own writers (loader, transformer, and the database owner)
may create temporary tables and functions (``TEMPORARY`` on the database is
revoked from ``PUBLIC``) and, where :func:`ensure_roles` runs as a superuser,
nobody else may create large objects (``EXECUTE`` on :data:`LARGE_OBJECT_CREATORS`
revoked from ``PUBLIC``). So a reader owns nothing in the database, not even
for a session. ``ALTER ROLE … SET`` on oneself cannot be taken away in
PostgreSQL (every role may set its own session defaults); it is harmless here:
it only changes that login's own sessions, to values it could ``SET`` anyway
(superuser-only parameters are refused), and with nothing it may create there
is nothing for e.g. a ``search_path`` to point at.

Phones are in clear text in ``raw`` only; everywhere else they are an HMAC with a
secret key. Only the transformer may execute the hash function (see
:data:`PII_FUNCTIONS`), so no reader can hash guesses with a key of their own.

People and services log in as LOGIN users that are members of one group role
(:func:`create_login`). :func:`ensure_roles` is idempotent and safe to run every
night from several processes at once: roles are cluster-wide, so their creation
tolerates a concurrent creator; grants are per database and serialised with an
advisory lock. Besides grants on existing tables it sets default privileges, so
a table first created later (a new mart published by a later night) is readable
by the right roles without re-running it.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from qudao.constants import (
    CANDIDATE_SCHEMA,
    INTERMEDIATE_SCHEMA,
    OPS_SCHEMA,
    PUBLISHED_SCHEMA,
    RAW_SCHEMA,
    STAGING_SCHEMA,
)

LOADER = "qudao_loader"
TRANSFORMER = "qudao_transformer"
ANALYST = "analyst"
BI_READER = "bi_reader"
OPERATOR = "qudao_operator"
GROUP_ROLES = (LOADER, TRANSFORMER, ANALYST, BI_READER, OPERATOR)
#: The group roles people and BI tools get logins in (``qudao warehouse login create``).
READER_ROLES = (ANALYST, BI_READER)
#: Roles that may create temporary tables (dbt's incremental models, publishing).
TEMP_ROLES = (LOADER, TRANSFORMER)

#: schema -> role -> "read" | "write"
ACCESS: dict[str, dict[str, str]] = {
    RAW_SCHEMA: {LOADER: "write", TRANSFORMER: "read", OPERATOR: "read"},
    OPS_SCHEMA: {LOADER: "write", TRANSFORMER: "read", OPERATOR: "read"},
    STAGING_SCHEMA: {TRANSFORMER: "write", ANALYST: "read", OPERATOR: "read"},
    INTERMEDIATE_SCHEMA: {TRANSFORMER: "write", ANALYST: "read", OPERATOR: "read"},
    CANDIDATE_SCHEMA: {TRANSFORMER: "write", OPERATOR: "read"},
    PUBLISHED_SCHEMA: {TRANSFORMER: "write", ANALYST: "read", BI_READER: "read", OPERATOR: "read"},
}

#: Server-side functions that create large objects; PUBLIC may execute them by default.
LARGE_OBJECT_CREATORS = (
    "pg_catalog.lo_creat(integer)",
    "pg_catalog.lo_create(oid)",
    "pg_catalog.lo_from_bytea(oid, bytea)",
    "pg_catalog.lo_import(text)",
    "pg_catalog.lo_import(text, oid)",
)

_log = logging.getLogger(__name__)

_TABLE_PRIVILEGES = {"read": "select", "write": "select, insert, update, delete, truncate, references"}
_SEQUENCE_PRIVILEGES = {"read": "select", "write": "usage, select, update"}
_SCHEMA_PRIVILEGES = {"read": "usage", "write": "usage, create"}

#: Functions that compute personal-data hashes: executable by the transformer only. dbt's
#: staging views call them at query time with a key from the session (``qudao.pii_key``);
#: a reader allowed to call them could set a key of their own and brute-force the phones
#: behind the hashes. Readers use the hashes stored in ``staging``, ``intermediate`` and ``marts``.
PII_FUNCTIONS = ("ops.hmac_sha256_hex(text, text)",)

_CREATE_ROLE = """
do $do$
begin
    create role {role} nologin;
exception
    when duplicate_object or unique_violation then null;  -- created meanwhile by another session
end
$do$
"""


def _create_group_roles(conn: psycopg.Connection) -> None:
    for role in GROUP_ROLES:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        if not exists:
            with conn.transaction():
                conn.execute(sql.SQL(_CREATE_ROLE).format(role=sql.Identifier(role)))


def _creators(conn: psycopg.Connection) -> list[str]:
    """Roles whose future tables get default privileges: the connecting user and the transformer."""
    me = conn.execute("select current_user").fetchone()[0]  # type: ignore[index]
    can_act_for_transformer = conn.execute(
        "select rolsuper or pg_has_role(current_user, %s, 'MEMBER')"
        " from pg_roles where rolname = current_user",
        (TRANSFORMER,),
    ).fetchone()[0]  # type: ignore[index]
    return [me, TRANSFORMER] if can_act_for_transformer and me != TRANSFORMER else [me]


def _grant_schema(conn: psycopg.Connection, schema: str, creators: list[str]) -> None:
    s = sql.Identifier(schema)
    for role, level in ACCESS[schema].items():
        r = sql.Identifier(role)
        tables = sql.SQL(_TABLE_PRIVILEGES[level])
        sequences = sql.SQL(_SEQUENCE_PRIVILEGES[level])
        conn.execute(sql.SQL("grant {} on schema {} to {}").format(sql.SQL(_SCHEMA_PRIVILEGES[level]), s, r))
        conn.execute(sql.SQL("grant {} on all tables in schema {} to {}").format(tables, s, r))
        conn.execute(sql.SQL("grant {} on all sequences in schema {} to {}").format(sequences, s, r))
        for creator in creators:
            if creator == role:
                continue
            prefix = sql.SQL("alter default privileges for role {} in schema {} ").format(
                sql.Identifier(creator), s
            )
            conn.execute(prefix + sql.SQL("grant {} on tables to {}").format(tables, r))
            conn.execute(prefix + sql.SQL("grant {} on sequences to {}").format(sequences, r))


def grant_readers(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Grant ``select`` on a new table of ``schema`` to the existing roles that read it (:data:`ACCESS`).

    Default privileges cover tables the configured creators make; this covers a table
    another role created (publishing as the superuser, say).
    """
    readers = [role for role, level in ACCESS[schema].items() if level == "read"]
    present = [r for (r,) in conn.execute("select rolname from pg_roles where rolname = any(%s)", (readers,))]
    for role in sorted(present):
        conn.execute(
            sql.SQL("grant select on {} to {}").format(sql.Identifier(schema, table), sql.Identifier(role))
        )


def _protect_pii_functions(conn: psycopg.Connection) -> None:
    for signature in PII_FUNCTIONS:
        if conn.execute("select to_regprocedure(%s)", (signature,)).fetchone()[0] is None:  # type: ignore[index]
            continue
        fn = sql.SQL(signature)  # a constant of this module, never user input
        conn.execute(sql.SQL("revoke execute on function {} from public").format(fn))
        conn.execute(sql.SQL("grant execute on function {} to {}").format(fn, sql.Identifier(TRANSFORMER)))


def _restrict_temporary(conn: psycopg.Connection) -> None:
    db = sql.Identifier(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]
    conn.execute(sql.SQL("revoke temporary on database {} from public").format(db))
    roles = sql.SQL(", ").join(sql.Identifier(r) for r in TEMP_ROLES)
    conn.execute(sql.SQL("grant temporary on database {} to {}").format(db, roles))


def _restrict_large_objects(conn: psycopg.Connection) -> None:
    """Only a superuser may change the grants of pg_catalog's functions: elsewhere, say so."""
    superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]  # type: ignore[index]
    if not superuser:
        _log.warning(
            "not a superuser: PUBLIC keeps EXECUTE on the large-object functions; ask the DBA to run "
            "REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC",
            ", ".join(LARGE_OBJECT_CREATORS),
        )
        return
    for signature in LARGE_OBJECT_CREATORS:
        fn = sql.SQL(signature)  # a constant of this module, never user input
        conn.execute(sql.SQL("revoke execute on function {} from public").format(fn))


def ensure_roles(conn: psycopg.Connection) -> None:
    """Create the group roles if missing and (re)apply every grant in this database.

    Schemas missing from the database are created first (empty), so grants and
    default privileges are in place before the first table appears. The PII hash
    functions (:data:`PII_FUNCTIONS`) become executable by the transformer only;
    temporary objects and large objects are taken from ``PUBLIC`` (module docstring).
    """
    autocommit = conn.autocommit
    if not autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        conn.autocommit = True
    try:
        _create_group_roles(conn)
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('qudao.ensure_roles'))")
            creators = _creators(conn)
            for schema in ACCESS:
                conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
                _grant_schema(conn, schema, creators)
            _protect_pii_functions(conn)
            _restrict_temporary(conn)
            _restrict_large_objects(conn)
    finally:
        conn.autocommit = autocommit


def create_login(conn: psycopg.Connection, name: str, role: str, password: str | None = None) -> None:
    """Create (or update) LOGIN user ``name`` as a member of group role ``role``.

    Loader and transformer users act as their group role from login on (``alter
    role … set role``). Without a password the user can only log in where the
    server trusts it (local development, tests); pass one for anything else.
    """
    if role not in GROUP_ROLES:
        raise ValueError(f"unknown group role {role!r}; one of {', '.join(GROUP_ROLES)}")
    user = sql.Identifier(name)
    pw = sql.SQL(" password {}").format(sql.Literal(password)) if password else sql.SQL("")
    with conn.transaction():
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
        if exists:
            conn.execute(sql.SQL("alter role {} login").format(user) + pw)
        else:
            conn.execute(sql.SQL("create role {} login").format(user) + pw)
        conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(role), user))
        if role in (LOADER, TRANSFORMER):
            # Act as the group role from login on: what it creates belongs to the group
            # (so its default privileges apply and any other member may replace it).
            conn.execute(sql.SQL("alter role {} set role = {}").format(user, sql.Literal(role)))


def drop_login(conn: psycopg.Connection, name: str) -> None:
    """Drop LOGIN user ``name`` if it exists (never a group role)."""
    if name in GROUP_ROLES:
        raise ValueError(f"{name!r} is a group role; it is never dropped")
    conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
