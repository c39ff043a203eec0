"""Reads of the funders domain that several faces use: who already holds a program's aid (the
grant form, the bulk grant and the import's dry run all flag it, so that no one is granted the
same aid twice by mistake)."""

from collections.abc import Iterable
from datetime import time, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from core.money import format_money
from funders.models import Allocation, Program


def program_holders(*, program: Program, beneficiary_ids: Iterable[int]) -> dict[int, Allocation]:
    """The beneficiaries among `beneficiary_ids` who hold the program's aid now or from a later
    day (an active grant not yet ended), each with that grant."""
    now = timezone.now()
    allocations = (
        Allocation.objects.filter(
            program=program,
            beneficiary_id__in=list(beneficiary_ids),
            status=Allocation.Status.ACTIVE,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .order_by("created_at")
    )
    return {allocation.beneficiary_id: allocation for allocation in allocations}


def already_holds_message(allocation: Allocation) -> str:
    """ "Already holds this aid (150,00 € until 30/09/2027)"."""
    amount = format_money(allocation.amount, allocation.currency)
    if allocation.valid_until is None:
        return gettext("Already holds this aid (%(amount)s, with no end)") % {"amount": amount}
    local = timezone.localtime(allocation.valid_until)
    last_day = local.date() - timedelta(days=1) if local.time() == time(0, 0) else local.date()
    return gettext("Already holds this aid (%(amount)s until %(date)s)") % {
        "amount": amount,
        "date": date_format(last_day, "SHORT_DATE_FORMAT"),
    }
