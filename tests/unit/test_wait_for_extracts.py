"""The extracts sensor fails at once when waiting cannot help, and says what it waits for.

The sensor's ``execute`` runs here on real landing folders (written by the generator);
no scheduler is needed: a deferral shows as Airflow's ``TaskDeferred``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from qudao.orchestration.extracts import (
    ExtractsCompleteTrigger,
    WaitForExtractsSensor,
    fail_fast_reason,
    incomplete_message,
    publish_deadline,
)
from qudao.orchestration.runner import PROGRESS

PAST = date(2026, 1, 5)


def _sensor(landing: Path | str, night: date) -> WaitForExtractsSensor:
    return WaitForExtractsSensor(
        task_id="wait_for_extracts",
        landing=str(landing),
        business_date=night.isoformat(),
        poke_interval=60,
        deadline=timedelta(hours=4),
    )


def _landing_without_calls(tmp_path: Path, night: date) -> Path:
    from qudao_demo import generate

    landing = tmp_path / "landing"
    generate(landing, night, night, scale="small", seed=3)
    for p in (landing / "call_center" / night.isoformat()).iterdir():
        p.unlink()
    return landing


def test_the_publish_deadline_is_seven_in_shanghai_the_next_morning() -> None:
    due = publish_deadline(date(2026, 11, 15))
    assert due.astimezone(UTC) == datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # 07:00 +08:00 on the 16th


def test_a_past_night_with_a_missing_extract_fails_at_once(tmp_path: Path) -> None:
    landing = _landing_without_calls(tmp_path, PAST)
    with pytest.raises(AirflowFailException) as failed:
        _sensor(landing, PAST).execute({})
    message = str(failed.value)
    assert message == incomplete_message(
        str(landing),
        PAST.isoformat(),
        ["call_center.calls"],
        "after its publish deadline 2026-01-06 07:00 Asia/Shanghai (a past night: nothing is awaited)",
    )
    outcome = failed.value.outcome  # what the alert reads: typed, not parsed out of the message
    assert outcome.failed == ("call_center.calls",) and outcome.look == (str(landing),)
    assert (outcome.kind, outcome.sources, outcome.business_date) == (
        "extracts_missing",
        ("call_center",),
        PAST,
    )


def test_a_landing_zone_that_does_not_exist_fails_at_once(tmp_path: Path) -> None:
    future = datetime.now(UTC).date() + timedelta(days=2)  # a night whose deadline is still ahead
    missing_folder = tmp_path / "nowhere"
    with pytest.raises(AirflowFailException) as failed:
        _sensor(missing_folder, future).execute({})
    message = str(failed.value)
    assert "the landing zone does not exist" in message
    assert f"(landing zone {missing_folder})" in message
    assert "missing crm.channel_managers, crm.products" in message


def test_a_complete_past_night_succeeds(tmp_path: Path) -> None:
    from qudao_demo import generate

    landing = tmp_path / "landing"
    generate(landing, PAST, PAST, scale="small", seed=3)
    assert _sensor(landing, PAST).execute({}) is None


def test_a_night_still_in_time_defers_and_says_what_it_awaits_until_when(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night = datetime.now(UTC).date() + timedelta(days=1)
    landing = _landing_without_calls(tmp_path, night)
    with pytest.raises(TaskDeferred) as deferred:
        _sensor(landing, night).execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ExtractsCompleteTrigger)
    assert trigger.business_date == night.isoformat()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(PROGRESS)]
    assert len(lines) == 1, lines
    until = datetime.fromisoformat(trigger.deadline_at)
    assert f"{night}: waiting for call_center.calls in {landing} until " in lines[0]
    assert f"{until.astimezone(publish_deadline(night).tzinfo):%Y-%m-%d %H:%M} Asia/Shanghai" in lines[0]


def test_fail_fast_reason_compares_with_the_deadline(tmp_path: Path) -> None:
    due = publish_deadline(PAST)
    assert fail_fast_reason(str(tmp_path), PAST.isoformat(), now=due - timedelta(minutes=1)) is None
    late = fail_fast_reason(str(tmp_path), PAST.isoformat(), now=due + timedelta(minutes=1))
    assert late and "publish deadline 2026-01-06 07:00" in late
