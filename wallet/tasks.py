import logging

from celery import shared_task
from django.utils import timezone

from core.errors import HoldAlreadyResolved
from ledger.models import Transfer
from ledger.services import hold_expire
from wallet.models.decisions import Decision

logger = logging.getLogger(__name__)


@shared_task
def expire_holds(batch_size: int = 500) -> int:
    """Release holds that were neither captured nor reversed in time. Each expiry is keyed by
    its hold, so two workers running this at once release each hold once. The merchant API's
    authorizations are left to merchants.tasks.expire_authorizations, which also tells the
    merchant."""
    due = (
        Transfer.objects.filter(
            is_pending=True, resolution__isnull=True, expires_at__lte=timezone.now()
        )
        .exclude(decision_hold__decision__channel=Decision.Channel.API)
        .order_by("expires_at")[:batch_size]
    )
    expired = 0
    for hold in due:
        try:
            hold_expire(hold=hold)
        except HoldAlreadyResolved:
            continue  # captured or reversed since the list was read: nothing left to release
        expired += 1
    return expired
