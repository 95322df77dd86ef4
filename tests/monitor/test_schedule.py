"""Schedule expressions as SageMaker accepts them, the slots they fire at, and windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tabpilot.monitor.schedule import (
    ScheduleError,
    latest_due,
    next_due,
    parse_schedule,
    window,
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize("expression, hours", [
    ("cron(0 * ? * * *)", tuple(range(24))),
    ("cron(0 12 ? * * *)", (12,)),
    ("cron(0 00 ? * * *)", (0,)),
    ("cron(0 17/12 ? * * *)", (17,)),
    ("cron(0 0/2 ? * * *)", tuple(range(0, 24, 2))),
    ("cron(0 */6 ? * * *)", (0, 6, 12, 18)),
    ("cron(0 5/24 ? * * *)", (5,)),
    ("NOW", ()),
    ("now", ()),
])
def test_accepted_forms(expression: str, hours: tuple[int, ...]) -> None:
    assert parse_schedule(expression).hours == hours


@pytest.mark.parametrize("expression", [
    "cron(30 * ? * * *)",  # minutes other than 0
    "cron(0 24 ? * * *)",  # hour out of range
    "cron(0 1/0 ? * * *)",  # zero interval
    "cron(0 1/25 ? * * *)",
    "cron(0 * ? * MON *)",  # day of week
    "cron(0 * 1 * ? *)",  # day of month
    "cron(0 1-5 ? * * *)",  # ranges are not SageMaker's
    "cron(0 * ? * *)",  # five fields
    "rate(1 hour)",
    "0 * * * *",
    "",
])
def test_other_expressions_are_refused_naming_the_accepted_forms(expression: str) -> None:
    with pytest.raises(ScheduleError, match=r"cron\(0 \* \? \* \* \*\).*NOW"):
        parse_schedule(expression)


@pytest.mark.parametrize("start, end", [("PT1H", None), ("-PT1H", "-PT2H"), ("-PXH", None),
                                        (None, "yesterday"), ("-PT1H", "-PT1H")])
def test_bad_offsets_are_refused(start: str | None, end: str | None) -> None:
    with pytest.raises(ScheduleError, match="DataAnalysis"):
        parse_schedule("NOW", start, end)


def test_hourly_runs_the_latest_hour_since_creation_only() -> None:
    hourly = parse_schedule("cron(0 * ? * * *)")
    created = at(3, 14, 30)
    assert latest_due(hourly, at(3, 14, 59), created) is None  # first slot is 15:00
    assert latest_due(hourly, at(3, 15, 0), created) == at(3, 15)
    assert latest_due(hourly, at(3, 15, 40), created) == at(3, 15)
    assert next_due(hourly, at(3, 14, 40), created) == at(3, 15)
    assert next_due(hourly, at(3, 15, 0), created) == at(3, 16)
    # a server down for a day runs only the last missed slot: the latest one
    assert latest_due(hourly, at(4, 16, 10), created) == at(4, 16)


def test_daily_and_every_n_hours() -> None:
    created = at(3, 14, 30)
    noon = parse_schedule("cron(0 12 ? * * *)")
    assert latest_due(noon, at(3, 23), created) is None
    assert next_due(noon, at(3, 14, 30), created) == at(4, 12)
    assert latest_due(noon, at(6, 11), created) == at(5, 12)
    every12 = parse_schedule("cron(0 17/12 ? * * *)")  # 17:00 only: 17 + 12 > 23
    assert next_due(every12, created, created) == at(3, 17)
    assert latest_due(every12, at(4, 16), created) == at(3, 17)
    two = parse_schedule("cron(0 0/2 ? * * *)")
    assert next_due(two, created, created) == at(3, 16)
    assert latest_due(two, at(3, 19, 59), created) == at(3, 18)


def test_now_runs_once_at_its_start() -> None:
    once = parse_schedule("NOW", "-PT2H", "-PT0H")
    created = at(3, 14, 30)
    assert latest_due(once, at(3, 14, 29), created) is None
    assert latest_due(once, at(3, 18), created) == created
    assert next_due(once, at(3, 14), created) == created
    assert next_due(once, created, created) is None


def test_windows_default_to_the_previous_hour_or_follow_the_offsets() -> None:
    hourly = parse_schedule("cron(0 * ? * * *)")
    assert window(hourly, at(3, 15)) == (at(3, 14), at(3, 15))
    once = parse_schedule("NOW", "-P1D", "-PT1H")
    assert window(once, at(3, 15, 20)) == (at(3, 15, 20) - timedelta(days=1), at(3, 14, 20))
