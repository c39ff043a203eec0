"""Calendar periods for spending caps, counted in Europe/Paris time as funders think of them.

A "day" cap resets at midnight in Paris, a "week" cap on Monday at 00:00 (ISO week), a
"month" cap on the 1st, a "year" cap on 1 January, and a "validity" cap never (it counts from
the aid's first valid instant). Midnight is never skipped nor repeated in Paris (the clocks
change at 02:00 and 03:00), so every bound is a single well-defined instant.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.time import PARIS

PERIODS = ("day", "week", "month", "year", "validity")


def period_start(period: str, at: datetime, *, valid_from: datetime | None) -> datetime | None:
    """The first instant of the period that contains `at` (aware, in Paris time).

    "validity" answers `valid_from` itself (None: counted since ever)."""
    if period == "validity":
        return valid_from
    local = at.astimezone(PARIS)
    day = local.date()
    if period == "day":
        start = day
    elif period == "week":
        start = day - timedelta(days=day.weekday())
    elif period == "month":
        start = day.replace(day=1)
    elif period == "year":
        start = day.replace(month=1, day=1)
    else:
        raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")
    # Built from the date, not by subtracting hours from `at`: a day is 23 or 25 hours long
    # on the days the clocks change.
    return datetime(start.year, start.month, start.day, tzinfo=PARIS)


@dataclass(frozen=True)
class Usage:
    """What the pocket already spent in each period: net approved minor units in
    [period_start, at), approved minus reversed or refunded. A missing period counts as 0."""

    spent: dict[str, int] = field(default_factory=dict)

    def used(self, period: str) -> int:
        return self.spent.get(period, 0)
