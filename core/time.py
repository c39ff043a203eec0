"""Time as funders count it: days of Europe/Paris, validity that runs to the end of a whole day
(stored as the first instant after it, exclusive), and moments written as people say them."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext

PARIS = ZoneInfo("Europe/Paris")


def start_of_day(day: date) -> datetime:
    """Midnight in Paris, where funders count their days."""
    return datetime.combine(day, time(0, 0), tzinfo=PARIS)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` in Paris: validity ends are exclusive in the ledger, and
    people say "until the 31st" meaning the 31st included."""
    return start_of_day(day + timedelta(days=1))


def format_instant(value: datetime) -> str:
    """A moment as a date, with the time only when it is not midnight: "1 April 2027"."""
    local = timezone.localtime(value)
    day = date_format(local.date(), "DATE_FORMAT")
    if local.time() == time(0, 0):
        return day
    return gettext("%(date)s at %(time)s") % {
        "date": day,
        "time": time_format(local.time(), "H:i"),
    }


def format_until(valid_until: datetime) -> str:
    """The end of validity as people say it. valid_until is exclusive (the first instant the
    aid no longer works), so a midnight end is told as the day before: valid_until at
    1 April 00:00 reads "until 31 March"."""
    local = timezone.localtime(valid_until)
    if local.time() == time(0, 0):
        return date_format(local.date() - timedelta(days=1), "DATE_FORMAT")
    return format_instant(valid_until)


def format_until_inclusive(valid_until: datetime) -> str:
    """The end of validity as a whole last day, said so: "until 30 September 2027 inclusive",
    never "until 1 October 00:00" (valid_until is the first instant after that day). An end
    that is not at midnight keeps its time."""
    local = timezone.localtime(valid_until)
    if local.time() == time(0, 0):
        return gettext("until %(date)s inclusive") % {"date": format_until(valid_until)}
    return gettext("until %(moment)s") % {"moment": format_instant(valid_until)}
