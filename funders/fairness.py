"""Who a campaign reaches and who it leaves out: per département, age band and household type,
how many people its last full run evaluated, found eligible and found already holding the aid,
and what became of the proposals it made. A selector: it reads, never writes.

The run's figures are the denominators (a person is counted in the group they were in on the day
of that run); the proposals are counted from the proposals themselves, all of the campaign's, in
the group recorded on each proposal when it was made. Shares are whole percentages computed with
integers, rounded half up, and None where the denominator is 0."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from funders import eligibility
from funders.models import Campaign, CampaignRun, Proposal

DIMENSIONS = ("departement", "age_band", "household_type")
TITLES = {
    "departement": _("By département"),
    "age_band": _("By age band"),
    "household_type": _("By household"),
}
STATUSES = ("pending", "accepted", "rejected", "withdrawn")


def percent(part: int, whole: int) -> int | None:
    """`part` of `whole` as a whole percentage, rounded half up, with integers only."""
    if not whole:
        return None
    return (200 * part + whole) // (2 * whole)


@dataclass
class Row:
    key: str  # the group's key as stored ("38", "60-74", "alone"; "" when not known)
    label: str
    evaluated: int = 0
    eligible: int = 0
    holding: int = 0  # eligible and already holding the aid
    proposed: int = 0  # proposals made, whatever became of them
    pending: int = 0
    accepted: int = 0
    rejected: int = 0
    withdrawn: int = 0

    @property
    def not_holding(self) -> int:
        """Eligible people who do not hold the aid: those the campaign exists to reach."""
        return self.eligible - self.holding

    @property
    def eligible_share(self) -> int | None:
        return percent(self.eligible, self.evaluated)

    @property
    def holding_share(self) -> int | None:
        """Of the eligible, how many hold the aid already (%)."""
        return percent(self.holding, self.eligible)

    @property
    def refusal_rate(self) -> int | None:
        """Of the proposals decided by an agent, how many were rejected (%)."""
        return percent(self.rejected, self.accepted + self.rejected)

    def add(self, other: "Row") -> None:
        for name in (
            "evaluated",
            "eligible",
            "holding",
            "proposed",
            "pending",
            "accepted",
            "rejected",
            "withdrawn",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Table:
    dimension: str
    title: str
    rows: list[Row]
    total: Row
    run: CampaignRun | None = field(default=None, repr=False)


def latest_full_run(campaign: Campaign) -> CampaignRun | None:
    """The last completed run over everyone the funder helps (a run on a data change looks at a
    few people only and would make poor denominators)."""
    return (
        CampaignRun.objects.filter(
            campaign=campaign,
            trigger__in=[CampaignRun.Trigger.ON_DEMAND, CampaignRun.Trigger.SCHEDULE],
            status=CampaignRun.Status.DONE,
        )
        .order_by("-started_at", "-pk")
        .first()
    )


def group_order(dimension: str, keys: set[str]) -> list[str]:
    """Groups in reading order: départements by number, bands and households as eligibility
    lists them."""
    if dimension == "departement":
        # By number ("2A" and "2B" after "19", overseas after "95"); unknown last.
        return sorted(k for k in keys if k) + ([""] if "" in keys else [])
    labels = eligibility.AGE_BANDS if dimension == "age_band" else eligibility.HOUSEHOLD_TYPES
    known = [key for key, _label in labels]
    listed = [key for key in known if key in keys]
    # A key the labels do not know (an older band) is still shown, after the known ones.
    return listed + sorted(keys - set(known))


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def campaign_fairness(campaign: Campaign, *, run: CampaignRun | None = None) -> list[Table]:
    """One table per dimension (département, age band, household type). `run` defaults to the
    latest full run; with no run, the proposal columns are still filled."""
    if run is None:
        run = latest_full_run(campaign)
    breakdown = run.breakdown if run is not None and isinstance(run.breakdown, dict) else {}

    # dimension → group key → status → count, in one query.
    counts: dict[str, dict[str, dict[str, int]]] = {
        dimension: defaultdict(lambda: defaultdict(int)) for dimension in DIMENSIONS
    }
    grouped = (
        Proposal.objects.filter(campaign=campaign)
        .order_by()
        .values(*DIMENSIONS, "status")
        .annotate(n=Count("pk"))
    )
    for line in grouped:
        for dimension in DIMENSIONS:
            counts[dimension][line[dimension] or ""][line["status"]] += line["n"]

    tables = []
    for dimension in DIMENSIONS:
        figures = breakdown.get(dimension) or {}
        if not isinstance(figures, dict):
            figures = {}
        keys = set(figures) | set(counts[dimension])
        rows = []
        for key in group_order(dimension, keys):
            group = figures.get(key) or {}
            statuses = counts[dimension].get(key, {})
            rows.append(
                Row(
                    key=key,
                    label=eligibility.group_label(dimension, key),
                    evaluated=_int(group.get("evaluated")),
                    eligible=_int(group.get("eligible")),
                    holding=_int(group.get("holding")),
                    proposed=sum(statuses.values()),
                    **{status: statuses.get(status, 0) for status in STATUSES},
                )
            )
        total = Row(key="*", label=str(_("All")))
        for row in rows:
            total.add(row)
        tables.append(
            Table(
                dimension=dimension,
                title=str(TITLES[dimension]),
                rows=rows,
                total=total,
                run=run,
            )
        )
    return tables
