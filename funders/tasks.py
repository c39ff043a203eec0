from celery import shared_task
from django.db.models import F
from django.utils import timezone

from funders.models import Allocation
from funders.services import allocation_expire, allocation_sweep
from wallet.errors import InvalidState
from wallet.ledger.models import Transfer


@shared_task
def expire_allocations(batch_size: int = 500) -> int:
    """End allocations whose validity is over and return their remainder to the program; also
    sweep ended allocations whose pending payments have since been released."""
    due = Allocation.objects.filter(
        status=Allocation.Status.ACTIVE, valid_until__lte=timezone.now()
    ).select_related("program")[:batch_size]
    count = 0
    for allocation in due:
        try:
            allocation_expire(allocation=allocation)
        except InvalidState:
            continue  # revoked since the list was read: its own sweep returned the money
        count += 1
    leftovers = (
        Allocation.objects.exclude(status=Allocation.Status.ACTIVE)
        .filter(pocket__account__balance__gt=F("pocket__account__pending"))
        .select_related("program")[:batch_size]
    )
    for allocation in leftovers:
        kind = (
            Transfer.Kind.REVOKE
            if allocation.status == Allocation.Status.REVOKED
            else Transfer.Kind.EXPIRE
        )
        allocation_sweep(allocation=allocation, kind=kind)
    return count
