from celery import shared_task
from django.db.models import F
from django.utils import timezone

from funders.models import Allocation, AllocationImport, RecurringAllocation
from funders.services import allocation_expire, allocation_sweep, recurring_allocation_run_due
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


@shared_task
def run_recurring_allocations() -> int:
    """Make the runs of recurring allocations whose day has come. Each run is made once,
    whatever the number of times this task runs (its grants' keys name the run)."""
    today = timezone.localdate()
    made = 0
    due = RecurringAllocation.objects.filter(is_active=True).select_related("program")
    for schedule in due:
        if schedule.runs_done < schedule.runs:
            made += recurring_allocation_run_due(schedule=schedule, today=today)
    return made


@shared_task(ignore_result=True)
def allocation_import_check(import_id: int) -> str | None:
    """Check an uploaded allocation file (the dry run). Safe to run twice."""
    # Imported here: funders.imports queues these tasks, so it imports this module.
    from funders.imports import import_check

    allocation_import = AllocationImport.objects.filter(pk=import_id).first()
    if allocation_import is None:
        return None
    return import_check(allocation_import=allocation_import).status


@shared_task(ignore_result=True)
def allocation_import_apply(import_id: int) -> str | None:
    """Grant a confirmed allocation file, all rows or none. Safe to run twice."""
    from funders.imports import import_apply

    allocation_import = AllocationImport.objects.filter(pk=import_id).first()
    if allocation_import is None:
        return None
    return import_apply(allocation_import=allocation_import).status
