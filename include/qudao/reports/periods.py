"""Report periods: ISO weeks (Monday first) and calendar months of business dates (Asia/Shanghai)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Period:
    """A closed week or month of business dates, ``start`` to ``end`` inclusive."""

    kind: str  # "week" | "month"
    start: date
    end: date

    @property
    def label(self) -> str:
        """``2026-W45`` or ``2026-11``: the folder name and the command-line spelling."""
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start:%Y-%m}"

    @property
    def title(self) -> str:
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            days = f"{self.start.month}月{self.start.day}日—{self.end.month}月{self.end.day}日"
            return f"{year}年第{week}周（{days}）"
        return f"{self.start.year}年{self.start.month}月"

    @property
    def name(self) -> str:
        """渠道周通报 / 渠道月报."""
        return "渠道周通报" if self.kind == "week" else "渠道月报"

    @property
    def change_name(self) -> str:
        return "环比（上周）" if self.kind == "week" else "环比（上月）"

    def previous(self) -> Period:
        if self.kind == "week":
            return week_of(self.start - timedelta(days=7))
        return month_of(self.start - timedelta(days=1))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def week_of(d: date) -> Period:
    monday = d - timedelta(days=d.weekday())
    return Period("week", monday, monday + timedelta(days=6))


def month_of(d: date) -> Period:
    first = d.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, following - timedelta(days=1))


def closed_week(business_date: date) -> Period:
    """The latest ISO week whose Sunday is on or before ``business_date``."""
    week = week_of(business_date)
    return week if week.end == business_date else week.previous()


def closed_month(business_date: date) -> Period:
    """The latest month whose last day is on or before ``business_date``."""
    month = month_of(business_date)
    return month if month.end == business_date else month.previous()


def parse_week(text: str) -> Period:
    """``2026-W45`` → that ISO week; a clear ``ValueError`` otherwise."""
    m = re.fullmatch(r"(\d{4})-W(\d{1,2})", text.strip())
    if not m:
        raise ValueError(f"not an ISO week (YYYY-Www, e.g. 2026-W45): {text!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as e:
        raise ValueError(f"no such ISO week: {text!r}") from e
    return week_of(monday)


def parse_month(text: str) -> Period:
    """``2026-11`` → that month; a clear ``ValueError`` otherwise."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"not a month (YYYY-MM, e.g. 2026-11): {text!r}")
    return month_of(date(int(m.group(1)), int(m.group(2)), 1))
