"""Waiting for a night's extracts: a deferrable sensor and the trigger it hands the wait to.

While it waits, the sensor holds no worker slot: the triggerer polls the landing
zone, and ``qudao run`` shows what is awaited and until when. At the deadline the
task fails with a message naming the missing entities (the failure alert carries
it to people). It fails at once, without waiting or retrying, when nothing can
arrive in time: the landing zone does not exist, or the night's publish deadline
(:func:`publish_deadline`) has already passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from qudao.constants import BUSINESS_TZ_NAME, SHANGHAI
from qudao.orchestration.night import env_seconds
from qudao.orchestration.runner import logical_date_for, progress

#: the night's marts are due this long after its run's logical time (02:00 Shanghai on D + 1):
#: 5 hours, i.e. 07:00 (the ``channel_publish_deadline`` DAG checks at that hour)
PUBLISH_DEADLINE_SECONDS = "QUDAO_PUBLISH_DEADLINE_SECONDS"
DEFAULT_PUBLISH_DEADLINE = timedelta(hours=5)


def _missing(landing: str, business_date: str) -> list[str]:
    from qudao.ingest.landing import missing_entities

    return missing_entities(landing, date.fromisoformat(business_date))


def _landing_exists(landing: str) -> bool:
    from qudao.ingest.landing import landing_exists

    return landing_exists(landing)


def publish_deadline(business_date: date) -> datetime:
    """When business date D's marts are due: 07:00 Shanghai on D + 1 (``QUDAO_PUBLISH_DEADLINE_SECONDS``)."""
    after = env_seconds(PUBLISH_DEADLINE_SECONDS, DEFAULT_PUBLISH_DEADLINE.total_seconds())
    return logical_date_for(business_date) + timedelta(seconds=after)


def shanghai_time(moment: datetime) -> str:
    """``2026-11-16 07:00 Asia/Shanghai``."""
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M} {BUSINESS_TZ_NAME}"


def incomplete_message(
    landing: str, business_date: str, missing: Sequence[str], why: str = "at the deadline"
) -> str:
    """The refusal people read in the alert (alerts parse ``missing <entities> (landing zone <l>)``)."""
    return (
        f"extracts for business date {business_date} incomplete {why}: missing "
        f"{', '.join(missing)} (landing zone {landing})"
    )


def fail_fast_reason(landing: str, business_date: str, now: datetime | None = None) -> str | None:
    """Why waiting for the night's extracts is pointless, or None when they may still arrive."""
    if not _landing_exists(landing):
        return "because the landing zone does not exist (check --landing or QUDAO_LANDING)"
    due = publish_deadline(date.fromisoformat(business_date))
    if (now or datetime.now(UTC)) > due:
        return f"after its publish deadline {shanghai_time(due)} (a past night: nothing is awaited)"
    return None


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
        seen: list[str] | None = None
        while True:
            missing = await asyncio.to_thread(_missing, self.landing, self.business_date)
            if not missing:
                yield TriggerEvent({"status": "complete", "missing": []})
                return
            if datetime.now(UTC) >= deadline:
                yield TriggerEvent({"status": "deadline", "missing": missing})
                return
            if seen is not None and missing != seen:  # something arrived: say what is still awaited
                progress(f"{self.business_date}: still waiting for {', '.join(missing)}")
            seen = missing
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
        why = fail_fast_reason(self.landing, self.business_date)
        if why:  # no retry: waiting again cannot help
            raise AirflowFailException(incomplete_message(self.landing, self.business_date, missing, why))
        deadline_at = datetime.now(UTC) + self.deadline
        progress(
            f"{self.business_date}: waiting for {', '.join(missing)} in {self.landing} "
            f"until {shanghai_time(deadline_at)}, looking every {self.poke_interval:g} s"
        )
        if not self.deferrable:
            return super().execute(context)
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
