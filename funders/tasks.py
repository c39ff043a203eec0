from celery import shared_task
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from core.errors import InvalidState
from funders.models import (
    Allocation,
    AllocationImport,
    Campaign,
    CampaignRun,
    ProfileImport,
    RecurringAllocation,
)
from funders.services import allocation_expire, allocation_sweep, recurring_allocation_run_due
from ledger.models import Transfer


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


@shared_task(ignore_result=True)
def run_campaign(campaign_id: int, user_id: int | None = None) -> int | None:
    """A full run of a campaign, asked by an agent. Safe to run twice: a second run finds the
    proposals of the first and adds none."""
    from funders.campaigns import campaign_run

    campaign = Campaign.objects.filter(pk=campaign_id).select_related("program__funder").first()
    if campaign is None:
        return None
    by = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND, by=by).pk


@shared_task(ignore_result=True)
def run_due_campaigns() -> int:
    """The scheduled runs whose day has come, one after the other."""
    from funders.campaigns import campaign_run, campaigns_due

    made = 0
    for campaign in campaigns_due():
        try:
            campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.SCHEDULE)
        except InvalidState:
            continue  # no criteria yet: the campaign's page says so when someone runs it
        made += 1
    return made


@shared_task(ignore_result=True)
def reevaluate_campaigns(funder_id: int, beneficiary_ids: list[int]) -> int:
    """The funder's campaigns over people whose data changed."""
    from funders.campaigns import campaigns_reevaluate

    return campaigns_reevaluate(funder_id=funder_id, beneficiary_ids=beneficiary_ids)


@shared_task(ignore_result=True)
def profile_import_check(import_id: int) -> str | None:
    """Check an uploaded file of beneficiary data (the dry run). Safe to run twice."""
    from funders.profile_imports import profile_import_check as check

    profile_import = ProfileImport.objects.filter(pk=import_id).first()
    if profile_import is None:
        return None
    return check(profile_import=profile_import).status


@shared_task(ignore_result=True)
def profile_import_apply(import_id: int) -> str | None:
    """Write a confirmed file of beneficiary data, all rows or none. Safe to run twice."""
    from funders.profile_imports import profile_import_apply as apply

    profile_import = ProfileImport.objects.filter(pk=import_id).first()
    if profile_import is None:
        return None
    return apply(profile_import=profile_import).status
