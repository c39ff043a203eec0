"""The funder side's tasks, each named after the service it runs. Thin: load, call the service.

The services queue these tasks, so they import this module at the top; each task imports its
service when it runs, which keeps the import between the two in one direction."""

from celery import shared_task
from django.contrib.auth import get_user_model

from funders.models import AllocationImport, Campaign, CampaignRun, ProfileImport, RuleDryRun


@shared_task
def allocations_expire_due(batch_size: int = 1000) -> int:
    """End the allocations whose validity is over (see the service). Returns how many."""
    from funders import services

    return services.allocations_expire_due(batch_size=batch_size)


@shared_task(ignore_result=True)
def rollup_fold() -> int:
    """Fold the payments since the last run into the dashboards' rollup (funders/rollups.py).
    Returns how many transfer ids it folded."""
    from funders import rollups

    return rollups.rollup_fold().transfers


@shared_task
def recurring_allocations_run_due() -> int:
    """Make the runs of recurring allocations whose day has come. Returns how many."""
    from funders import services

    return services.recurring_allocations_run_due()


@shared_task(ignore_result=True)
def allocation_import_check(import_id: int) -> str | None:
    """Check an uploaded allocation file (the dry run). Safe to run twice."""
    from funders import imports

    allocation_import = AllocationImport.objects.filter(pk=import_id).first()
    if allocation_import is None:
        return None
    return imports.allocation_import_check(allocation_import=allocation_import).status


@shared_task(ignore_result=True)
def allocation_import_apply(import_id: int) -> str | None:
    """Grant a confirmed allocation file, all rows or none. Safe to run twice."""
    from funders import imports

    allocation_import = AllocationImport.objects.filter(pk=import_id).first()
    if allocation_import is None:
        return None
    return imports.allocation_import_apply(allocation_import=allocation_import).status


@shared_task(ignore_result=True)
def campaign_run(campaign_id: int, user_id: int | None = None) -> int | None:
    """A full run of a campaign, asked by an agent. Safe to run twice: a second run finds the
    proposals of the first and adds none."""
    from funders import campaigns

    campaign = Campaign.objects.filter(pk=campaign_id).select_related("program__funder").first()
    if campaign is None:
        return None
    by = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return campaigns.campaign_run(
        campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND, by=by
    ).pk


@shared_task(ignore_result=True)
def campaigns_run_due() -> int:
    """The scheduled runs whose day has come, one after the other."""
    from funders import campaigns

    return campaigns.campaigns_run_due()


@shared_task(ignore_result=True)
def campaigns_reevaluate(funder_id: int, beneficiary_ids: list[int]) -> int:
    """The funder's campaigns over people whose data changed."""
    from funders import campaigns

    return campaigns.campaigns_reevaluate(funder_id=funder_id, beneficiary_ids=beneficiary_ids)


@shared_task(ignore_result=True)
def profile_import_check(import_id: int) -> str | None:
    """Check an uploaded file of beneficiary data (the dry run). Safe to run twice."""
    from funders import profile_imports

    profile_import = ProfileImport.objects.filter(pk=import_id).first()
    if profile_import is None:
        return None
    return profile_imports.profile_import_check(profile_import=profile_import).status


@shared_task(ignore_result=True)
def profile_import_apply(import_id: int) -> str | None:
    """Write a confirmed file of beneficiary data, all rows or none. Safe to run twice."""
    from funders import profile_imports

    profile_import = ProfileImport.objects.filter(pk=import_id).first()
    if profile_import is None:
        return None
    return profile_imports.profile_import_apply(profile_import=profile_import).status


@shared_task(ignore_result=True)
def rule_dry_run_execute(dry_run_id: int) -> str | None:
    """Replay a program's past decisions with proposed rules (the dry run). Safe to run twice."""
    from funders import dry_runs

    dry_run = RuleDryRun.objects.filter(pk=dry_run_id).select_related("program").first()
    if dry_run is None:
        return None
    return dry_runs.rule_dry_run_execute(dry_run=dry_run).status


@shared_task
def nonuse_detect() -> int:
    """Find the people not using their aid, once a day (see the service). Returns how many
    episodes it opened."""
    from funders import nonuse

    return nonuse.nonuse_detect()


@shared_task
def program_returns_due() -> int:
    """Pay back the float of closed programs whose aid has all ended (see the service)."""
    from funders import closing

    return closing.program_returns_due()
