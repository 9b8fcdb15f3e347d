"""Cron jobs: the Python form of `convex/crons.ts` (QUERIES §4.5) and the schedule arithmetic.

```python
from console.emulator.crons import Crons

crons = Crons()
crons.interval("cleanup", {"minutes": 5}, "maintenance:cleanup", {})
crons.daily("digest", {"hourUTC": 8, "minuteUTC": 30}, "digest:sendAll")
crons.cron("hourly report", "0 * * * *", "reports:hourly")
```
`crons.crons` is the shape the JS `Crons` object exports:
`{identifier: {"name": "mod:fn", "args": [args], "schedule": {...}}}`.
"""

from __future__ import annotations

import calendar
import datetime
from typing import Any

from console import values

DAYS_OF_WEEK = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_INTERVAL_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


class CronError(ValueError):
    """An invalid cron declaration."""


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise CronError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise CronError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


class Crons:
    """Declares cron jobs; the app's `crons` module exposes one instance named `crons`."""

    is_crons = True

    def __init__(self) -> None:
        self.crons: dict[str, dict] = {}
        self._functions: dict[str, Any] = {}

    # -- declarations
    def interval(self, identifier: str, schedule: dict, function, args: dict | None = None) -> None:
        given = [unit for unit in _INTERVAL_UNITS if unit in (schedule or {})]
        if len(given) != 1:
            raise CronError("Interval must specify exactly one of seconds, minutes or hours")
        unit = given[0]
        amount = schedule[unit]
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0 or int(amount) != amount:
            raise CronError(f"Interval {unit} must be a positive integer, got {amount!r}")
        self._add(identifier, {"type": "interval", unit: int(amount)}, function, args)

    def hourly(self, identifier: str, schedule: dict, function, args: dict | None = None) -> None:
        spec = {"type": "hourly"}
        if "minuteUTC" in (schedule or {}):
            spec["minuteUTC"] = _check_int(schedule["minuteUTC"], "minuteUTC", 0, 59)
        self._add(identifier, spec, function, args)

    def daily(self, identifier: str, schedule: dict, function, args: dict | None = None) -> None:
        spec = {"type": "daily", "hourUTC": _check_int(schedule.get("hourUTC"), "hourUTC", 0, 23)}
        self._minute(spec, schedule)
        self._add(identifier, spec, function, args)

    def weekly(self, identifier: str, schedule: dict, function, args: dict | None = None) -> None:
        day = schedule.get("dayOfWeek")
        if day not in DAYS_OF_WEEK:
            raise CronError(f"dayOfWeek must be one of {', '.join(DAYS_OF_WEEK)}, got {day!r}")
        spec = {"type": "weekly", "dayOfWeek": day, "hourUTC": _check_int(schedule.get("hourUTC"), "hourUTC", 0, 23)}
        self._minute(spec, schedule)
        self._add(identifier, spec, function, args)

    def monthly(self, identifier: str, schedule: dict, function, args: dict | None = None) -> None:
        spec = {
            "type": "monthly",
            "day": _check_int(schedule.get("day"), "day", 1, 31),
            "hourUTC": _check_int(schedule.get("hourUTC"), "hourUTC", 0, 23),
        }
        self._minute(spec, schedule)
        self._add(identifier, spec, function, args)

    def cron(self, identifier: str, cron: str, function, args: dict | None = None) -> None:
        CronExpression(cron)  # validates
        self._add(identifier, {"type": "cron", "cron": cron}, function, args)

    # -- helpers
    @staticmethod
    def _minute(spec: dict, schedule: dict) -> None:
        if "minuteUTC" in schedule:
            spec["minuteUTC"] = _check_int(schedule["minuteUTC"], "minuteUTC", 0, 59)

    def _add(self, identifier: str, schedule: dict, function, args: dict | None) -> None:
        if not isinstance(identifier, str) or not identifier:
            raise CronError("Cron identifier must be a non-empty string")
        if identifier in self.crons:
            raise CronError(f"Cron identifier registered twice: {identifier}")
        args = {} if args is None else args
        if not isinstance(args, dict):
            raise CronError(f"Cron args must be an object, got {args!r}")
        values.check_value(args)
        self._functions[identifier] = function
        self.crons[identifier] = {"name": _function_name(function), "args": [args], "schedule": schedule}

    def resolved(self) -> dict[str, dict]:
        """The declarations with function references turned into paths (registration done)."""
        return {
            identifier: {**entry, "name": _function_name(self._functions[identifier])}
            for identifier, entry in self.crons.items()
        }


def _function_name(function) -> str | None:
    if isinstance(function, str):
        return function
    path = getattr(function, "path", None)
    if path is None:
        return None  # a ConvexFunction not registered yet: resolved when the deployment starts
    module, _, name = path.rpartition(":")
    module = module[:-3] if module.endswith(".js") else module
    return module if name == "default" else f"{module}:{name}"


# ---------------------------------------------------------------------------
# Schedules as stored in `_cron_jobs.cronSpec.cronSchedule` and their next run


def stored_schedule(schedule: dict) -> dict:
    """The `_cron_jobs` form: interval in seconds, int64 numbers, dayOfWeek as 0-6."""
    kind = schedule["type"]
    if kind == "interval":
        seconds = sum(schedule.get(unit, 0) * factor for unit, factor in _INTERVAL_UNITS.items())
        return {"type": "interval", "seconds": int(seconds)}
    if kind == "cron":
        return {"type": "cron", "cronExpr": schedule["cron"]}
    stored = {"type": kind, "minuteUTC": int(schedule.get("minuteUTC", 0))}
    if kind in ("daily", "weekly", "monthly"):
        stored["hourUTC"] = int(schedule["hourUTC"])
    if kind == "weekly":
        stored["dayOfWeek"] = DAYS_OF_WEEK.index(schedule["dayOfWeek"])
    if kind == "monthly":
        stored["day"] = int(schedule["day"])
    return stored


def as_cron_expression(stored: dict) -> str | None:
    """The 5-field expression equivalent to a stored schedule (None for intervals)."""
    kind = stored["type"]
    minute = stored.get("minuteUTC", 0)
    if kind == "hourly":
        return f"{minute} * * * *"
    if kind == "daily":
        return f"{minute} {stored['hourUTC']} * * *"
    if kind == "weekly":
        return f"{minute} {stored['hourUTC']} * * {stored['dayOfWeek']}"
    if kind == "monthly":
        return f"{minute} {stored['hourUTC']} {stored['day']} * *"
    if kind == "cron":
        return stored["cronExpr"]
    return None


def next_run_ns(stored: dict, prev_ns: int | None, now_ns: int) -> int:
    """When a cron runs next: an interval runs at once, then every `seconds` after the previous
    run (Convex's `compute_next_ts`); calendar schedules at the next matching minute after
    the previous run, or after now when runs were missed."""
    if stored["type"] == "interval":
        if prev_ns is None:
            return now_ns
        following = prev_ns + stored["seconds"] * 1_000_000_000
        return following if following > now_ns else now_ns
    expression = CronExpression(as_cron_expression(stored))
    after = max(prev_ns or 0, now_ns)
    moment = datetime.datetime.fromtimestamp(after / 1e9, tz=datetime.timezone.utc)
    found = expression.next_after(moment)
    return int(found.timestamp()) * 1_000_000_000


def describe(schedule: dict) -> str:
    """A short human form of a stored or declared schedule (for the console)."""
    kind = schedule.get("type")
    if kind == "interval":
        seconds = schedule.get("seconds")
        if seconds is None:
            seconds = sum(schedule.get(u, 0) * f for u, f in _INTERVAL_UNITS.items())
        for unit, factor in (("hour", 3600), ("minute", 60)):
            if seconds % factor == 0 and seconds >= factor:
                count = seconds // factor
                return f"every {count} {unit}{'s' if count != 1 else ''}"
        return f"every {seconds} second{'s' if seconds != 1 else ''}"
    if kind == "cron":
        return f"cron {schedule.get('cronExpr') or schedule.get('cron')}"
    minute = int(schedule.get("minuteUTC", 0))
    hour = schedule.get("hourUTC")
    at = f"{int(hour):02d}:{minute:02d} UTC" if hour is not None else f":{minute:02d}"
    if kind == "hourly":
        return f"hourly at {at}"
    if kind == "daily":
        return f"daily at {at}"
    if kind == "weekly":
        day = schedule.get("dayOfWeek")
        name = DAYS_OF_WEEK[day] if isinstance(day, int) else day
        return f"weekly on {name} at {at}"
    if kind == "monthly":
        return f"monthly on day {schedule.get('day')} at {at}"
    return str(kind)


# ---------------------------------------------------------------------------
# A 5-field cron expression (minute hour day-of-month month day-of-week), UTC


_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {name[:3]: i for i, name in enumerate(DAYS_OF_WEEK)}


class CronExpression:
    def __init__(self, text: str):
        if not isinstance(text, str):
            raise CronError(f"Cron expression must be a string, got {text!r}")
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"Invalid cron expression {text!r}: expected 5 fields (minute hour day month weekday)")
        self.text = text
        sets = [self._parse(part, *spec) for part, spec in zip(parts, _FIELDS)]
        self.minutes, self.hours, self.days, self.months, weekdays = sets
        self.weekdays = {0 if d == 7 else d for d in weekdays}
        self.days_restricted = parts[2] != "*"
        self.weekdays_restricted = parts[4] != "*"

    @staticmethod
    def _value(token: str, name: str, low: int, high: int) -> int:
        names = _MONTH_NAMES if name == "month" else _DAY_NAMES if name == "day of week" else {}
        number = names.get(token.lower()[:3]) if token.lower()[:3] in names else None
        if number is None:
            if not token.isdigit():
                raise CronError(f"Invalid {name} {token!r} in cron expression")
            number = int(token)
        if not low <= number <= high:
            raise CronError(f"Invalid {name} {number} in cron expression: must be {low}-{high}")
        return number

    def _parse(self, part: str, name: str, low: int, high: int) -> set[int]:
        result: set[int] = set()
        for item in part.split(","):
            body, _, step_text = item.partition("/")
            step = self._value(step_text, f"{name} step", 1, high + 1) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                first, _, last = body.partition("-")
                start, end = self._value(first, name, low, high), self._value(last, name, low, high)
                if start > end:
                    raise CronError(f"Invalid {name} range {body!r} in cron expression")
            else:
                start = self._value(body, name, low, high)
                end = high if step_text else start
            result.update(range(start, end + 1, step))
        return result

    def _day_matches(self, moment: datetime.datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first matching minute strictly after `moment` (UTC)."""
        candidate = moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        limit = candidate + datetime.timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.month not in self.months:
                year, month = (candidate.year + 1, 1) if candidate.month == 12 else (candidate.year, candidate.month + 1)
                candidate = candidate.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(candidate):
                candidate = (candidate + datetime.timedelta(days=1)).replace(hour=0, minute=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + datetime.timedelta(hours=1)).replace(minute=0)
            elif candidate.minute not in self.minutes:
                candidate += datetime.timedelta(minutes=1)
            else:
                return candidate
        raise CronError(f"Cron expression {self.text!r} never matches")
