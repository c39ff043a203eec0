"""Calendar period bounds in Europe/Paris time, including daylight-saving days."""

from datetime import UTC, datetime, timedelta

import pytest

from core.time import PARIS
from engine.periods import Usage, period_start


def paris(*args):
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("period", "at", "expected"),
    [
        # day: from local midnight
        ("day", paris(2027, 6, 15, 0, 0), paris(2027, 6, 15)),
        ("day", paris(2027, 6, 15, 23, 59, 59), paris(2027, 6, 15)),
        # 23:30 UTC on 14 June is 01:30 on 15 June in Paris (summer time, UTC+2)
        ("day", datetime(2027, 6, 14, 23, 30, tzinfo=UTC), paris(2027, 6, 15)),
        # 22:30 UTC on 14 June is still 14 June in Paris
        ("day", datetime(2027, 6, 14, 21, 59, tzinfo=UTC), paris(2027, 6, 14)),
        # spring forward, Sunday 28 March 2027: the day is 23 hours long
        ("day", paris(2027, 3, 28, 23, 0), paris(2027, 3, 28)),
        ("day", paris(2027, 3, 28, 3, 0), paris(2027, 3, 28)),
        # autumn back, Sunday 31 October 2027: the day is 25 hours long
        ("day", paris(2027, 10, 31, 23, 30), paris(2027, 10, 31)),
        # week: ISO week from Monday 00:00
        ("week", paris(2027, 6, 14, 0, 0), paris(2027, 6, 14)),  # a Monday
        ("week", paris(2027, 6, 20, 23, 59), paris(2027, 6, 14)),  # the Sunday after
        ("week", paris(2027, 6, 13, 23, 59), paris(2027, 6, 7)),  # the Sunday before
        ("week", paris(2027, 3, 28, 12, 0), paris(2027, 3, 22)),  # across spring forward
        ("week", paris(2027, 11, 3, 12, 0), paris(2027, 11, 1)),  # Monday after autumn back
        ("week", paris(2027, 1, 2, 12, 0), paris(2026, 12, 28)),  # a week across new year
        # month: from the 1st
        ("month", paris(2027, 4, 1, 0, 0), paris(2027, 4, 1)),
        ("month", paris(2027, 3, 31, 23, 59, 59), paris(2027, 3, 1)),
        ("month", datetime(2027, 3, 31, 22, 30, tzinfo=UTC), paris(2027, 4, 1)),  # 00:30 Paris
        ("month", paris(2027, 10, 31, 2, 30), paris(2027, 10, 1)),
        # year: from 1 January
        ("year", paris(2027, 1, 1, 0, 0), paris(2027, 1, 1)),
        ("year", paris(2026, 12, 31, 23, 59, 59), paris(2026, 1, 1)),
        ("year", datetime(2026, 12, 31, 23, 30, tzinfo=UTC), paris(2027, 1, 1)),  # 00:30 Paris
    ],
)
def test_period_start(period, at, expected):
    start = period_start(period, at, valid_from=None)
    assert start == expected
    assert start.utcoffset() is not None


def test_period_start_in_utc_instant_across_daylight_saving():
    # Midnight in Paris is 23:00 UTC in winter and 22:00 UTC in summer.
    winter = period_start("day", paris(2027, 3, 27, 12, 0), valid_from=None)
    summer = period_start("day", paris(2027, 3, 29, 12, 0), valid_from=None)
    assert winter.astimezone(UTC) == datetime(2027, 3, 26, 23, 0, tzinfo=UTC)
    assert summer.astimezone(UTC) == datetime(2027, 3, 28, 22, 0, tzinfo=UTC)
    # The spring-forward day really is 23 hours long.
    spring_day = period_start("day", paris(2027, 3, 28, 12, 0), valid_from=None)
    assert summer.astimezone(UTC) - spring_day.astimezone(UTC) == timedelta(hours=23)


def test_validity_period_starts_at_valid_from():
    valid_from = paris(2027, 2, 1, 9, 0)
    assert period_start("validity", paris(2027, 6, 1), valid_from=valid_from) == valid_from


def test_validity_period_without_start_counts_since_ever():
    assert period_start("validity", paris(2027, 6, 1), valid_from=None) is None


def test_unknown_period_is_an_error():
    with pytest.raises(ValueError, match="fortnight"):
        period_start("fortnight", paris(2027, 6, 1), valid_from=None)


def test_usage_of_a_missing_period_is_zero():
    usage = Usage({"day": 1200})
    assert usage.used("day") == 1200
    assert usage.used("month") == 0
