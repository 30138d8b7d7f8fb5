"""``qudao sql`` through the real CLI: read-only as ``qudao_operator`` unless ``--write``.

In-process (``qudao.cli.main``) against a fresh database of the session's server,
named by ``QUDAO_WAREHOUSE_URL`` as an operator would.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from qudao.cli import main

pytestmark = pytest.mark.integration

Sql = Callable[..., tuple[int, str, str]]


@pytest.fixture
def sql(
    db_url: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Sql:
    """Run ``qudao sql ARGS``; returns (exit status, stdout, stderr)."""
    conn.execute("create table marts.mart_m (k int, v text)")
    conn.execute("insert into marts.mart_m values (1, 'a'), (2, null)")
    conn.execute(
        "insert into ops.rejected_rows (load_id, source, entity, business_date, file_name, line_number,"
        " reason, raw_text) values (1, 'crm', 'partner', '2026-11-14', 'partners.csv', 7, 'bad date', 'x')"
    )
    monkeypatch.setenv("QUDAO_WAREHOUSE_URL", db_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["sql", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_reads_marts_and_ops_as_the_operator_role_read_only(sql: Sql) -> None:
    assert sql("select k, v from marts.mart_m order by k") == (0, "k,v\n1,a\n2,\n", "(2 rows)\n")
    assert sql("select line_number, reason from ops.rejected_rows") == (
        0,
        "line_number,reason\n7,bad date\n",
        "(1 rows)\n",
    )
    code, out, _ = sql("select current_user, current_setting('transaction_read_only')")
    assert (code, out) == (0, "current_user,current_setting\nqudao_operator,on\n")


@pytest.mark.parametrize(
    "statement",
    [
        "create table marts.sneaky (k int)",
        "drop table marts.mart_m",
        "delete from marts.mart_m",
        "insert into ops.rejected_rows (load_id) values (2)",
        "commit; drop table marts.mart_m",  # a new transaction is read-only too
    ],
)
def test_refuses_any_change_without_write_in_one_line(
    sql: Sql, conn: psycopg.Connection, statement: str
) -> None:
    code, out, err = sql(statement)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("qudao sql: cannot execute ")
    assert err.endswith(
        "in a read-only transaction (qudao sql only reads; add --write to change the warehouse)\n"
    )
    assert conn.execute("select count(*) from marts.mart_m").fetchone() == (2,)


def test_write_opts_in_to_a_committed_read_write_session(sql: Sql, conn: psycopg.Connection) -> None:
    assert sql("--write", "delete from marts.mart_m where k = 2") == (0, "DELETE 1\n", "")
    assert sql("--write", "create table marts.mart_new (k int)") == (0, "CREATE TABLE\n", "")
    assert conn.execute("select count(*) from marts.mart_m").fetchone() == (1,)
    assert conn.execute("select to_regclass('marts.mart_new') is not null").fetchone() == (True,)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from marts.nope", 'relation "marts.nope" does not exist'),
        ("selec 1", 'syntax error at or near "selec"'),
        ("select 1/0", "division by zero"),
    ],
)
def test_sql_errors_are_one_line_without_a_traceback(sql: Sql, query: str, message: str) -> None:
    assert sql(query) == (1, "", f"qudao sql: {message}\n")
