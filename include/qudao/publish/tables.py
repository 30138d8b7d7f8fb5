"""A published table's shape: created like its candidate, new columns added, comments and
indexes kept in step with it. Grants come from :mod:`qudao.warehouse.roles`."""

from __future__ import annotations

import psycopg
from psycopg import sql

from qudao.constants import CANDIDATE_SCHEMA, PUBLISHED_SCHEMA
from qudao.warehouse.roles import grant_readers


def ident(schema: str, table: str) -> sql.Composable:
    return sql.Identifier(schema, table)


def columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (f"{schema}.{table}",),
    ).fetchall()


def _sync_comments(conn: psycopg.Connection, table: str) -> None:
    cand, pub = f"{CANDIDATE_SCHEMA}.{table}", f"{PUBLISHED_SCHEMA}.{table}"
    comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (cand,)).fetchone()[0]
    current = conn.execute("select obj_description(%s::regclass, 'pg_class')", (pub,)).fetchone()[0]
    if comment and comment != current:
        conn.execute(
            sql.SQL("comment on table {} is {}").format(ident(PUBLISHED_SCHEMA, table), sql.Literal(comment))
        )
    rows = conn.execute(
        "select c.attname, col_description(%s::regclass, c.attnum), col_description(%s::regclass, p.attnum)"
        " from pg_attribute c join pg_attribute p on p.attrelid = %s::regclass and p.attname = c.attname"
        " where c.attrelid = %s::regclass and c.attnum > 0 and not c.attisdropped",
        (cand, pub, pub, cand),
    ).fetchall()
    for column, want, have in rows:
        if want and want != have:
            conn.execute(
                sql.SQL("comment on column {}.{} is {}").format(
                    ident(PUBLISHED_SCHEMA, table), sql.Identifier(column), sql.Literal(want)
                )
            )


def ensure_published_table(conn: psycopg.Connection, table: str) -> bool:
    """Create ``marts.<table>`` like its candidate, or add new columns; True when created."""
    exists = conn.execute("select to_regclass(%s) is not null", (f"{PUBLISHED_SCHEMA}.{table}",)).fetchone()[
        0
    ]
    if not exists:
        conn.execute(
            sql.SQL("create table {} (like {} including defaults including comments)").format(
                ident(PUBLISHED_SCHEMA, table), ident(CANDIDATE_SCHEMA, table)
            )
        )
        grant_readers(conn, PUBLISHED_SCHEMA, table)
    else:
        have = {c for c, _ in columns(conn, PUBLISHED_SCHEMA, table)}
        for column, type_ in columns(conn, CANDIDATE_SCHEMA, table):
            if column not in have:  # additive change: the new column appears, nothing breaks
                conn.execute(
                    sql.SQL("alter table {} add column {} " + type_).format(
                        ident(PUBLISHED_SCHEMA, table), sql.Identifier(column)
                    )
                )
    _sync_comments(conn, table)
    _sync_indexes(conn, table)
    return not exists


def _index_shapes(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    """The candidate's or published table's indexes as ``USING <method> (<columns>)``."""
    rows = conn.execute(
        "select pg_get_indexdef(i.indexrelid) from pg_index i where i.indrelid = %s::regclass",
        (f"{schema}.{table}",),
    ).fetchall()
    return {d[d.index(" USING ") + 1 :] for (d,) in rows}


def _sync_indexes(conn: psycopg.Connection, table: str) -> None:
    """Give ``marts.<table>`` the candidate's indexes (keys, night columns).

    Publishing deletes and inserts by date or by key, and the gate and analysts filter on
    the same columns: without them every night would scan the published history.
    Created non-unique: uniqueness is tested on the candidate before publishing.
    """
    have = _index_shapes(conn, PUBLISHED_SCHEMA, table)
    for shape in sorted(_index_shapes(conn, CANDIDATE_SCHEMA, table) - have):
        conn.execute(sql.SQL("create index on {} ").format(ident(PUBLISHED_SCHEMA, table)) + sql.SQL(shape))
