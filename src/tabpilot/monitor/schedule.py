"""When a monitoring schedule runs, and over which window of captured data.

SageMaker accepts few ScheduleExpression forms, and so does tabpilot (times are UTC):

    cron(0 * ? * * *)      every hour, on the hour
    cron(0 H ? * * *)      daily at hour H (0-23)
    cron(0 H/N ? * * *)    every N hours (1-24) from hour H each day; cron(0 */N ...) from 0
    NOW                    once, when the schedule is created (or started again)

A run's scheduled time is its slot; its window is the hour before the slot, unless
DataAnalysisStartTime / DataAnalysisEndTime give offsets from the slot (`-PT1H`, `-P1D`,
`-PT0H`), as SageMaker's ScheduleConfig does. Only the latest slot that is due ever runs:
a server that was down for a day runs the last missed slot once, not 24 of them.

Pure functions of their arguments (no clock, no store), so the rules are tested directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tabpilot.errors import ConfigError

NOW = "NOW"
HOURLY = "cron(0 * ? * * *)"
FORMS = ("cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H, UTC), "
         "cron(0 H/N ? * * *) (every N hours from hour H) or NOW (once, now)")
_CRON = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)
_HOURS = re.compile(r"^(\*|\d{1,2})(?:/(\d{1,2}))?$")


class ScheduleError(ConfigError):
    """A ScheduleExpression or window offset that SageMaker would refuse."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    hours: tuple[int, ...]  # the hours of a day it runs at; empty for NOW
    start_offset: str | None = None  # DataAnalysisStartTime, e.g. -PT1H
    end_offset: str | None = None  # DataAnalysisEndTime, e.g. -PT0H

    @property
    def once(self) -> bool:
        return not self.hours


def parse_schedule(expression: str, start_offset: str | None = None,
                   end_offset: str | None = None) -> Schedule:
    """The schedule an expression describes; anything SageMaker refuses raises
    ScheduleError naming the accepted forms."""
    text = expression.strip()
    for name, offset in (("DataAnalysisStartTime", start_offset),
                         ("DataAnalysisEndTime", end_offset)):
        if offset is not None:
            _check_offset(name, offset)
    if text.upper() == NOW:
        schedule = Schedule(NOW, (), start_offset, end_offset)
    else:
        match = _CRON.match(text)
        fields = match.group(1).split() if match else []
        if len(fields) != 6 or fields[0] != "0" or fields[2] not in ("?", "*") \
                or fields[3:] != ["*", "*", "*"]:
            raise ScheduleError(f"ScheduleExpression {expression!r} is not one SageMaker "
                                f"accepts; use {FORMS}")
        schedule = Schedule(text, _hours(fields[1], expression), start_offset, end_offset)
    window(schedule, datetime(2000, 1, 2, tzinfo=UTC))  # the offsets make a window
    return schedule


def _hours(field: str, expression: str) -> tuple[int, ...]:
    match = _HOURS.match(field)
    if not match:
        raise ScheduleError(f"ScheduleExpression {expression!r}: the hour field {field!r} is "
                            f"not *, H or H/N; use {FORMS}")
    first, step = match.groups()
    if first == "*" and step is None:
        return tuple(range(24))
    start = 0 if first == "*" else int(first)
    every = 24 if step is None else int(step)
    if not 0 <= start <= 23 or not 1 <= every <= 24:
        raise ScheduleError(f"ScheduleExpression {expression!r}: the hour must be 0-23 and the "
                            f"interval 1-24 hours; use {FORMS}")
    return tuple(range(start, 24, every))


def _check_offset(name: str, offset: str) -> None:
    from tabpilot.monitor.capture import parse_time

    moment = datetime(2000, 1, 2, tzinfo=UTC)
    if not offset.strip().upper().startswith("-P"):
        raise ScheduleError(f"{name} {offset!r} is not an offset; give an ISO 8601 duration "
                            "before the scheduled time, e.g. -PT1H or -P1D")
    try:
        parse_time(offset, moment, name)
    except ConfigError:
        raise ScheduleError(f"{name} {offset!r} is not an offset; give an ISO 8601 duration "
                            "before the scheduled time, e.g. -PT1H or -P1D") from None


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def latest_due(schedule: Schedule, now: datetime, since: datetime) -> datetime | None:
    """The latest slot in [since, now], or None: what a scheduler runs now (if it has not
    run it already). `since` is when the schedule was created or last started: slots
    before it never run, and a NOW schedule's one slot is `since` itself."""
    if schedule.once:
        return since if since <= now else None
    hour = _hour(now)
    for _ in range(25):  # every slot hour recurs within a day
        if hour < since:
            return None
        if hour.hour in schedule.hours:
            return hour
        hour -= timedelta(hours=1)
    return None


def next_due(schedule: Schedule, after: datetime, since: datetime) -> datetime | None:
    """The first slot strictly after `after` (and not before `since`); None once a NOW
    schedule's slot has passed."""
    if schedule.once:
        return since if since > after else None
    hour = _hour(max(after, since - timedelta(microseconds=1))) + timedelta(hours=1)
    for _ in range(25):
        if hour.hour in schedule.hours and hour >= since:
            return hour
        hour += timedelta(hours=1)
    return None  # pragma: no cover - every schedule has an hour


def window(schedule: Schedule, slot: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the data a slot's execution reads: the offsets from the slot, by
    default the hour before it."""
    from tabpilot.monitor.capture import parse_time

    start = parse_time(schedule.start_offset, slot, "DataAnalysisStartTime") \
        if schedule.start_offset else slot - timedelta(hours=1)
    end = parse_time(schedule.end_offset, slot, "DataAnalysisEndTime") \
        if schedule.end_offset else slot
    if start >= end:
        raise ScheduleError(f"DataAnalysisStartTime {schedule.start_offset or '-PT1H'} is not "
                            f"before DataAnalysisEndTime {schedule.end_offset or '-PT0H'}")
    return start, end
