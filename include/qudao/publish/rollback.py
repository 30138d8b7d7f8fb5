"""Rollback: undo the latest publish in force exactly, from the rows it saved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

import qudao.publish as package
from qudao.constants import PUBLISHED_SCHEMA
from qudao.ledger import publishes
from qudao.ledger.migrate import ensure_current
from qudao.publish.apply import UNCHANGED
from qudao.publish.tables import ident


@dataclass
class RollbackResult:
    """Which publish was undone and what was restored."""

    publish_id: int
    run_id: str
    business_dates: list[date]
    tables: dict[str, int]  # table -> rows restored

    def lines(self) -> list[str]:
        out = [
            f"rolled back publish {self.publish_id} (run {self.run_id},"
            f" {', '.join(map(str, self.business_dates))}): marts is as it was before it"
        ]
        out += [f"  marts.{t}: {n} rows restored" for t, n in sorted(self.tables.items())]
        return out


def rollback(url: str) -> RollbackResult:
    """Undo the latest publish still in force, restoring ``marts`` exactly as it was before it."""
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_current(conn)
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('qudao.publish'))")
            row = publishes.latest_in_force(conn)
            if row is None:
                raise RuntimeError("nothing to roll back: no publish in force")
            publish_id, run_id, doc = row
            later = publishes.publishes_after(conn, publish_id)
            if later >= package.KEEP_BACKUPS:
                raise RuntimeError(
                    f"publish {publish_id} is older than the {package.KEEP_BACKUPS} kept backups"
                )
            restored: dict[str, int] = {}
            for table, t in doc["tables"].items():
                pub = ident(PUBLISHED_SCHEMA, table)
                if t.get("mode") == UNCHANGED:  # the publish left it as it was
                    continue
                if t.get("mode") == "keys":
                    keys = sql.SQL(", ").join(sql.Identifier(k) for k in t["unique_key"])
                    conn.execute(
                        sql.SQL("delete from {pub} where ({k}) in (select {k} from ({saved}) r)").format(
                            pub=pub, k=keys, saved=publishes.saved_rows(pub)
                        ),
                        (publish_id, f"{table}#written"),
                    )
                elif t["date_column"]:
                    keys = [date.fromisoformat(k) for k in t["keys"]]
                    conn.execute(
                        sql.SQL("delete from {} where {} = any(%s)").format(
                            pub, sql.Identifier(t["date_column"])
                        ),
                        (keys,),
                    )
                else:
                    conn.execute(sql.SQL("delete from {}").format(pub))
                restored[table] = conn.execute(
                    sql.SQL("insert into {} ").format(pub) + publishes.saved_rows(pub), (publish_id, table)
                ).rowcount
            publishes.mark_rolled_back(conn, publish_id)
    return RollbackResult(publish_id, run_id, [date.fromisoformat(d) for d in doc.get("dates", [])], restored)
