"""The exceptions a night's steps raise: each carries the step's typed outcome.

``outcome`` (a :class:`qudao.ledger.outcomes.StepOutcome`) is what alerts read when the
ledger cannot be reached; ``kind`` says what the failure is about without one. A step
that crashes on an exception of its own gets its outcome attached (:func:`with_outcome`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from qudao.ledger.outcomes import StepOutcome


class StepFailed(Exception):
    """A step's failure with its outcome; subclasses that are :class:`AirflowFailException`
    are not retried."""

    kind = "task"

    def __init__(self, message: str, outcome: StepOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        if outcome is not None:
            self.kind = outcome.kind


class GateFailed(StepFailed, AirflowFailException):
    """The night's quality gate (or a dbt test) found a blocking failure: nothing was published."""

    kind = "quality_gate"


class ExtractsMissing(StepFailed, AirflowFailException):
    """Required extracts of the night are not in the landing zone (and waiting cannot help)."""

    kind = "extracts_missing"


class NotPublished(StepFailed, AirflowFailException):
    """The night's marts were not published by their deadline."""

    kind = "deadline"


def with_outcome(exc: BaseException, outcome: StepOutcome) -> BaseException:
    """``exc`` with ``outcome`` attached (its type, message and traceback unchanged)."""
    target: Any = exc
    target.outcome = outcome
    return exc


class StepError(StepFailed, RuntimeError):
    """A step failed in a way a retry may fix (a crash of dbt, a lost connection)."""
