"""Which dates building and publishing a business date involves once later nights are published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from qudao.ledger import publishes


@dataclass(frozen=True)
class NightScope:
    """What building a business date means once later nights are published.

    A night is built as known now. Its knowledge date ``run_date`` is the later of the
    business date and the latest published night: building an older date rebuilds every
    date from it to that night (dbt ``start_date`` .. ``run_date``) from all loaded data,
    the rows a ``--full-refresh`` through that night gives, so no published mart (a week
    of ``mart_visit_compliance``, a later day that saw the date's deliveries) becomes
    older than what is published. ``dates`` are gated and published together: the
    business date and the published nights after it (a date never published stays so).
    """

    business_date: date
    run_date: date
    dates: tuple[date, ...]

    @property
    def start_date(self) -> date | None:
        """dbt's ``start_date``: None for a night built alone."""
        return self.business_date if self.run_date != self.business_date else None

    def lines(self) -> list[str]:
        if self.start_date is None:
            return []
        return [
            f"{self.business_date} is older than the latest published night {self.run_date}: rebuilding"
            f" {self.business_date} … {self.run_date} from all loaded data, gating and publishing"
            f" {', '.join(map(str, self.dates))}"
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"run_date": self.run_date.isoformat(), "dates": [d.isoformat() for d in self.dates]}

    @classmethod
    def from_dict(cls, business_date: date, doc: dict[str, Any]) -> NightScope:
        return cls(
            business_date,
            date.fromisoformat(doc["run_date"]),
            tuple(date.fromisoformat(d) for d in doc["dates"]),
        )


def published_nights(conn: psycopg.Connection) -> list[date]:
    """The business dates of the publishes in force (not refused, failed or rolled back)."""
    return publishes.published_nights(conn)


def night_scope(url: str, business_date: date) -> NightScope:
    """The :class:`NightScope` of building ``business_date`` now."""
    with psycopg.connect(url, autocommit=True) as conn:
        nights = published_nights(conn)
    later = [d for d in nights if d > business_date]
    return NightScope(business_date, max([business_date, *later]), (business_date, *later))
