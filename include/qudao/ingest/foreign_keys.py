"""The contract's foreign keys of one file, checked against the keys raw already holds."""

from __future__ import annotations

import psycopg
from psycopg import sql

from qudao.contracts import Entity
from qudao.contracts import entity as entity_named
from qudao.ingest.validate import RowPlan


class ForeignKeys:
    """The contract's foreign keys of one file, checked against known keys."""

    def __init__(self, conn: psycopg.Connection, entity: Entity, plan: RowPlan):
        self.checks: list[tuple[int, set[str], int | None, str | None, str]] = []
        self.self_key: int | None = None
        self.self_known: set[str] | None = None
        for fk in entity.foreign_keys:
            idx = plan.position(fk.column)
            if idx is None:
                continue
            ref = entity_named(fk.entity)
            known = {
                r[0]
                for r in conn.execute(
                    sql.SQL("select distinct {c} from raw.{t} where {c} is not null").format(
                        c=sql.Identifier(fk.ref_column), t=sql.Identifier(ref.raw_table)
                    )
                )
            }
            cond_idx, cond_val = (None, None)
            if fk.when is not None:
                cond_idx, cond_val = plan.position(fk.when[0]), fk.when[1]
                if cond_idx is None:
                    continue
            reason = f"{fk.column}: unknown {fk.entity} {fk.ref_column} "
            self.checks.append((idx, known, cond_idx, cond_val, reason))
            if fk.entity == entity.qualified:  # self reference: keys of this file count too
                self.self_key = plan.position(fk.ref_column)
                self.self_known = known
        self.deferrable = self.self_key is not None
        if len(self.checks) == 1 and self.checks[0][2] is None:  # the common case, on the hot path
            idx, known, _, _, reason = self.checks[0]

            def single(values: list[str]) -> str | None:
                v = values[idx]
                return None if v in known or not v else reason + repr(v)

            self.failure = single  # type: ignore[method-assign]

    def failure(self, values: list[str]) -> str | None:
        """The reason the row's foreign keys fail, or None when they hold."""
        for idx, known, cond_idx, cond_val, reason in self.checks:
            v = values[idx]
            if v and v not in known and (cond_idx is None or values[cond_idx] == cond_val):
                return reason + repr(v)
        return None
