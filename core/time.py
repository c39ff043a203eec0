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
    """The end of validity as people say it, after "until". valid_until is exclusive (the first
    instant the aid no longer works), so a midnight end is told as the whole day before, said
    to be included: valid_until at 1 October 00:00 reads "30 September 2027 included" (in
    French "jusqu'au 30 septembre 2027 inclus"), never "1 October 00:00". Every place that
    tells an end (admin, app, SMS, e-mail, refusal reasons) goes through here, so they agree."""
    local = timezone.localtime(valid_until)
    if local.time() == time(0, 0):
        last_day = date_format(local.date() - timedelta(days=1), "DATE_FORMAT")
        return gettext("%(date)s included") % {"date": last_day}
    return format_instant(valid_until)


def format_until_inclusive(valid_until: datetime) -> str:
    """The end of validity as a phrase: "until 30 September 2027 included" (in French
    "jusqu'au 30 septembre 2027 inclus"), never "until 1 October 00:00"; an end that is not at
    midnight keeps its time (see format_until)."""
    return gettext("until %(moment)s") % {"moment": format_until(valid_until)}
