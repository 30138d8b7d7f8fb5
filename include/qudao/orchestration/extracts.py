"""Waiting for a night's extracts: a deferrable sensor and the trigger it hands the wait to.

While it waits, the sensor holds no worker slot: the triggerer polls the landing
zone, and ``qudao run`` shows what is awaited and until when. At the deadline the
task fails with :class:`~qudao.orchestration.failures.ExtractsMissing`, whose typed
outcome names the missing entities, their sources and the landing zone (the failure
alert carries it to the data team and those sources' owners). It fails at once,
without waiting or retrying, when nothing can arrive in time: the landing zone does
not exist, or the night's publish deadline (:func:`publish_deadline`) has already passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

from qudao.constants import BUSINESS_TZ_NAME, SHANGHAI
from qudao.ledger.outcomes import StepOutcome
from qudao.orchestration.failures import ExtractsMissing
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
    """The refusal people read in the task log and the alert."""
    return (
        f"extracts for business date {business_date} incomplete {why}: missing "
        f"{', '.join(missing)} (landing zone {landing})"
    )


def missing_error(
    landing: str, business_date: str, missing: Sequence[str], why: str = "at the deadline"
) -> ExtractsMissing:
    """The sensor's failure: the message, and the outcome naming what is missing and whose it is."""
    message = incomplete_message(landing, business_date, missing, why)
    outcome = StepOutcome(
        step="wait_for_extracts",
        kind="extracts_missing",
        business_date=date.fromisoformat(business_date),
        status="failed",
        sources=tuple(sorted({m.split(".", 1)[0] for m in missing})),
        failed=tuple(missing),
        look=(landing,),
        message=message,
    )
    return ExtractsMissing(message, outcome)


def _record(context: Any, error: ExtractsMissing) -> None:
    """Write the failure's outcome to the ledger (best effort: the failure must still raise)."""
    run_id = context.get("run_id") if isinstance(context, dict) else None
    if not run_id or error.outcome is None:
        return
    try:
        from qudao.ledger.outcomes import record
        from qudao.warehouse.connection import connect

        with connect() as conn:
            record(conn, run_id, error.outcome)
    except Exception as exc:  # the warehouse may be what is down; the alert still goes out
        progress(f"could not record the missing extracts in the ledger: {exc}")


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
            raise self._fail(context, missing, why)
        deadline_at = datetime.now(UTC) + self.deadline
        progress(
            f"{self.business_date}: waiting for {', '.join(missing)} in {self.landing} "
            f"until {shanghai_time(deadline_at)}, looking every {self.poke_interval:g} s"
        )
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout:
                raise self._fail(context, _missing(self.landing, self.business_date)) from None
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
            raise self._fail(context, event["missing"])
        self.log.info("all required extracts of %s arrived", self.business_date)

    def _fail(self, context: Any, missing: Sequence[str], why: str = "at the deadline") -> ExtractsMissing:
        """The failure for ``missing``, its outcome recorded in the ledger."""
        error = missing_error(self.landing, self.business_date, missing, why)
        _record(context, error)
        return error
