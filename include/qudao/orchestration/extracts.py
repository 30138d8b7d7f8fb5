"""Waiting for a night's extracts: a deferrable sensor and the trigger it hands the wait to.

While it waits, the sensor holds no worker slot: the triggerer polls the landing
zone. At the deadline the task fails with a message naming the missing entities
(the failure alert carries it to people).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent


def _missing(landing: str, business_date: str) -> list[str]:
    from qudao.ingest.landing import missing_entities

    return missing_entities(landing, date.fromisoformat(business_date))


def incomplete_message(landing: str, business_date: str, missing: Sequence[str]) -> str:
    """The refusal people read in the alert."""
    return (
        f"extracts for business date {business_date} incomplete at the deadline: missing "
        f"{', '.join(missing)} (landing zone {landing})"
    )


class ExtractsCompleteTrigger(BaseTrigger):
    """Polls the landing zone until the date's required entities are all there, or the deadline."""

    def __init__(self, landing: str, business_date: str, poke_interval: float, deadline_at: str) -> None:
        super().__init__()
        self.landing = landing
        self.business_date = business_date
        self.poke_interval = poke_interval
        self.deadline_at = deadline_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "landing": self.landing,
                "business_date": self.business_date,
                "poke_interval": self.poke_interval,
                "deadline_at": self.deadline_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline_at)
        while True:
            missing = await asyncio.to_thread(_missing, self.landing, self.business_date)
            if not missing:
                yield TriggerEvent({"status": "complete", "missing": []})
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent({"status": "deadline", "missing": missing})
                return
            await asyncio.sleep(self.poke_interval)


class WaitForExtractsSensor(BaseSensorOperator):
    """Succeeds when every required extract of the business date is in the landing zone.

    ``deferrable=True`` (the default) hands the wait to the triggerer after a first
    look; ``deadline`` counts from the task's first start.
    """

    template_fields: Sequence[str] = ("landing", "business_date")

    def __init__(
        self,
        *,
        landing: str,
        business_date: str,
        deadline: timedelta,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", deadline.total_seconds())
        super().__init__(**kwargs)
        self.landing = landing
        self.business_date = business_date
        self.deadline = deadline
        self.deferrable = deferrable

    def poke(self, context: Any) -> bool:
        missing = _missing(self.landing, self.business_date)
        if missing:
            self.log.info("waiting for %s of %s in %s", ", ".join(missing), self.business_date, self.landing)
        return not missing

    def execute(self, context: Any) -> Any:
        missing = _missing(self.landing, self.business_date)
        if not missing:
            self.log.info("all required extracts of %s are in %s", self.business_date, self.landing)
            return None
        if not self.deferrable:
            return super().execute(context)
        deadline_at = datetime.now(UTC) + self.deadline
        self.log.info("waiting for %s; deferring until %s", ", ".join(missing), deadline_at.isoformat())
        self.defer(
            trigger=ExtractsCompleteTrigger(
                self.landing, self.business_date, float(self.poke_interval), deadline_at.isoformat()
            ),
            method_name="execute_complete",
            timeout=self.deadline + timedelta(minutes=5),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        if event.get("status") != "complete":
            raise AirflowFailException(incomplete_message(self.landing, self.business_date, event["missing"]))
        self.log.info("all required extracts of %s arrived", self.business_date)
