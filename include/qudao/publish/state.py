"""What ``marts`` holds now: each table, its rows, date range and last publish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg import sql

from qudao.constants import PUBLISHED_SCHEMA
from qudao.ledger import publishes
from qudao.publish.tables import ident


@dataclass
class PublishedTable:
    """One table of ``marts`` and its last publish (for ``qudao status``)."""

    table: str
    rows: int
    publish_id: int | None
    run_id: str | None
    published_at: datetime | None
    date_column: str | None
    min_date: date | None
    max_date: date | None
    last_dates: list[date]


def published_state(url: str) -> list[PublishedTable]:
    """Every ``marts`` table with its row count, date range and last publish."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s"
                " and table_type = 'BASE TABLE' order by table_name",
                (PUBLISHED_SCHEMA,),
            ).fetchall()
        ]
        for table in tables:
            last = publishes.last_of_table(conn, table)
            pub = ident(PUBLISHED_SCHEMA, table)
            rows = conn.execute(sql.SQL("select count(*) from {}").format(pub)).fetchone()[0]
            date_column = last[3].get("date_column") if last else None
            lo = hi = None
            if date_column:
                lo, hi = conn.execute(
                    sql.SQL("select min({c}), max({c}) from {t}").format(c=sql.Identifier(date_column), t=pub)
                ).fetchone()
            out.append(
                PublishedTable(
                    table=table,
                    rows=rows,
                    publish_id=last[0] if last else None,
                    run_id=last[1] if last else None,
                    published_at=last[2] if last else None,
                    date_column=date_column,
                    min_date=lo,
                    max_date=hi,
                    last_dates=[date.fromisoformat(k) for k in (last[3].get("keys", []) if last else [])],
                )
            )
    return out
