"""Proactive aid: a campaign looks, among everyone a funder helps, for the people its program's
criteria make eligible, and proposes the aid to each one who does not hold it yet. An agent
keeps the last word: accepting a proposal grants through the allocation service (funds
checked, idempotent, the person told), rejecting it keeps the reason.

A run is one pass of the criteria (funders/eligibility.py) over the funder's people, or over
the few whose data just changed. It is safe to repeat: a person has at most one pending
proposal per campaign (a partial unique index, and the campaign's row locked for the run), a
person granted by the campaign is not proposed again, and a rejected proposal comes back only
when the person's data changed after the rejection."""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from simple_history.utils import bulk_update_with_history

from core import after_commit
from core.errors import DomainError, InsufficientFunds, InvalidState
from core.money import format_money, validate_amount
from core.time import end_of_day
from funders import eligibility, tasks
from funders.eligibility import Criterion, Facts
from funders.models import (
    Allocation,
    BeneficiaryProfile,
    Campaign,
    CampaignRun,
    EligibilityCriterion,
    Enrolment,
    Funder,
    Program,
    Proposal,
)
from funders.services import allocation_create
from ledger.models import Account

BATCH = 2000  # rows per INSERT or UPDATE statement of a run
Status = Proposal.Status


class CampaignWithoutCriteria(InvalidState):
    code = "campaign_without_criteria"
    default_message = gettext_lazy(
        "This program has no eligibility criteria: add them on the program's page first."
    )


class CampaignPaused(InvalidState):
    code = "campaign_paused"
    default_message = gettext_lazy("This campaign or its program is paused.")


class ProposalNotPending(InvalidState):
    code = "proposal_not_pending"
    default_message = gettext_lazy("This proposal was already decided.")


class DecisionReasonMissing(InvalidState):
    code = "decision_reason_required"
    default_message = gettext_lazy("Say why the proposal is rejected.")


# --- campaigns ---------------------------------------------------------------------------------


def campaign_create(
    *,
    program: Program,
    name: str,
    amount: int,
    amount_per_child: int = 0,
    validity_days: int | None = None,
    frequency: str = Campaign.Frequency.ON_DEMAND,
    by: AbstractBaseUser | None = None,
) -> Campaign:
    validate_amount(amount)
    if amount_per_child:
        validate_amount(amount_per_child, field="amount_per_child")
    campaign = Campaign(
        program=program,
        name=name,
        amount=amount,
        amount_per_child=amount_per_child,
        validity_days=validity_days,
        frequency=frequency,
        created_by=by,
    )
    campaign.full_clean()
    campaign.save()
    return campaign


def campaign_run_later(*, campaign: Campaign, by: AbstractBaseUser | None) -> None:
    """Queue a full run of the campaign, after the current transaction commits."""
    by_id = by.pk if by is not None else None
    transaction.on_commit(lambda: tasks.campaign_run.delay(campaign.pk, by_id))


def _criteria(program: Program) -> list[Criterion]:
    rows = EligibilityCriterion.objects.filter(program=program).select_related("other_program")
    return [Criterion.of(row) for row in rows]


# A person with several grants of one program: the state that says most wins.
_AID_RANK = {eligibility.RECEIVED: 0, eligibility.EXHAUSTED: 1, eligibility.HOLDS: 2}


def _other_aid(criteria: list[Criterion], ids: set[int] | None) -> dict[int, dict[int, str]]:
    """For each other program a criterion names: each person's state with its aid."""
    states: dict[int, dict[int, str]] = {}
    for program_id in {c.other_program for c in criteria if c.kind == eligibility.OTHER_AID}:
        allocations = Allocation.objects.filter(program_id=program_id)
        if ids is not None:
            allocations = allocations.filter(beneficiary_id__in=ids)
        state: dict[int, str] = {}
        for person, status, balance in allocations.values_list(
            "beneficiary_id", "status", "pocket__account__balance"
        ).iterator(chunk_size=BATCH):
            if status != Allocation.Status.ACTIVE:
                found = eligibility.RECEIVED
            else:
                found = eligibility.HOLDS if balance else eligibility.EXHAUSTED
            if _AID_RANK[found] > _AID_RANK.get(state.get(person), -1):
                state[person] = found
        states[program_id] = state
    return states


def _people(
    funder: Funder, ids: set[int] | None, other_aid: dict[int, dict[int, str]]
) -> Iterator[tuple[int, Facts, object]]:
    """Everyone the funder helps (or those of `ids`), with what it knows of them: their profile,
    the postcode of their wallet where the profile has none, and their other aid."""
    enrolments = Enrolment.objects.filter(funder=funder, beneficiary__erased_at__isnull=True)
    if ids is not None:
        enrolments = enrolments.filter(beneficiary_id__in=ids)
    rows = enrolments.values_list(
        "beneficiary_id",
        "beneficiary__postcode",
        "profile__postcode",
        "profile__commune",
        "profile__birth_date",
        "profile__household_size",
        "profile__dependent_children",
        "profile__income_bracket",
        "profile__attributes",
        "profile__updated_at",
    )
    for row in rows.iterator(chunk_size=BATCH):
        person, postcode, own_postcode, commune, born, size, children, bracket, attrs, at = row
        facts = Facts(
            postcode=own_postcode or postcode or "",
            commune=commune or "",
            birth_date=born,
            household_size=size,
            dependent_children=children,
            income_bracket=bracket,
            attributes=attrs or {},
            aid={
                program: states[person] for program, states in other_aid.items() if person in states
            },
        )
        yield person, facts, at


@dataclass
class _Tally:
    """A run's counts, in total and per group of the fairness view."""

    counts: Counter = field(default_factory=Counter)
    groups: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))

    def add(self, what: str, person_groups: dict[str, str]) -> None:
        self.counts[what] += 1
        for dimension, key in person_groups.items():
            self.groups[dimension][key][what] += 1

    def breakdown(self) -> dict:
        return {
            dimension: {key: dict(counter) for key, counter in sorted(keys.items())}
            for dimension, keys in self.groups.items()
        }


def campaign_run(
    *,
    campaign: Campaign,
    trigger: str,
    by: AbstractBaseUser | None = None,
    beneficiary_ids: Iterable[int] | None = None,
    today: date | None = None,
) -> CampaignRun:
    """Evaluate the campaign's criteria over the funder's people (or only `beneficiary_ids`),
    propose the aid to the newly eligible, and withdraw the pending proposals of people who are
    no longer eligible. The run's record keeps its counts, or its error when it failed."""
    program = campaign.program
    if not (campaign.is_active and program.is_active):
        raise CampaignPaused(field="campaign")
    criteria = _criteria(program)
    if not criteria:
        raise CampaignWithoutCriteria(field="campaign")
    ids = set(beneficiary_ids) if beneficiary_ids is not None else None
    run = CampaignRun.objects.create(campaign=campaign, trigger=trigger, started_by=by)
    try:
        with transaction.atomic():
            # One run of a campaign at a time: two would propose to the same person twice.
            Campaign.objects.select_for_update().get(pk=campaign.pk)
            _evaluate(run, campaign, criteria, ids, today or timezone.localdate())
    except Exception as error:
        CampaignRun.objects.filter(pk=run.pk).update(
            status=CampaignRun.Status.FAILED, finished_at=timezone.now(), error=repr(error)[:2000]
        )
        raise
    return run


def _evaluate(
    run: CampaignRun, campaign: Campaign, criteria: list, ids: set[int] | None, today: date
) -> None:
    program = campaign.program
    proposals = Proposal.objects.filter(campaign=campaign)
    holders = Allocation.objects.filter(program=program, status=Allocation.Status.ACTIVE)
    if ids is not None:
        proposals = proposals.filter(beneficiary_id__in=ids)
        holders = holders.filter(beneficiary_id__in=ids)
    holding = set(holders.values_list("beneficiary_id", flat=True))
    holding |= set(
        proposals.filter(status=Status.ACCEPTED).values_list("beneficiary_id", flat=True)
    )
    pending = dict(proposals.filter(status=Status.PENDING).values_list("beneficiary_id", "pk"))
    rejected = dict(
        proposals.filter(status=Status.REJECTED)
        .values("beneficiary_id")
        .annotate(last=Max("decided_at"))
        .values_list("beneficiary_id", "last")
    )
    other_aid = _other_aid(criteria, ids)

    tally = _Tally()
    new: list[_NewProposal] = []
    withdraw: dict[int, list[dict]] = {}  # pending proposal → why
    seen = set()
    for person, facts, updated_at in _people(program.funder, ids, other_aid):
        seen.add(person)
        person_groups = eligibility.groups(facts, today)
        tally.add("evaluated", person_groups)
        evaluation = eligibility.evaluate(criteria, facts, today)
        if not evaluation.eligible:
            if person in pending:
                withdraw[pending[person]] = evaluation.unmet
            continue
        tally.add("eligible", person_groups)
        if person in holding:
            tally.add("holding", person_groups)
            if person in pending:
                withdraw[pending[person]] = [eligibility.situation(eligibility.ALREADY_HOLDS)]
            continue
        if person in pending:
            continue
        if person in rejected and not (updated_at and updated_at > rejected[person]):
            continue  # rejected, and nothing new about them since
        tally.add("proposed", person_groups)
        children = facts.dependent_children or 0
        new.append(
            _NewProposal(
                beneficiary_id=person,
                amount=campaign.amount + campaign.amount_per_child * children,
                reasons=evaluation.met,
                **person_groups,
            )
        )
    for person, proposal_id in pending.items():
        if person not in seen:
            withdraw[proposal_id] = [eligibility.situation(eligibility.NOT_FOLLOWED)]

    _proposals_create(new, run)
    proposals_withdraw(reasons=withdraw, by=run.started_by)

    run.evaluated = tally.counts["evaluated"]
    run.eligible = tally.counts["eligible"]
    run.already_holding = tally.counts["holding"]
    run.proposed = len(new)
    run.withdrawn = len(withdraw)
    run.breakdown = tally.breakdown()
    run.status = CampaignRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    if ids is None:
        Campaign.objects.filter(pk=campaign.pk).update(last_run_at=run.finished_at)


@dataclass(frozen=True)
class _NewProposal:
    beneficiary_id: int
    amount: int
    reasons: list[dict]
    departement: str
    age_band: str
    household_type: str


def _proposals_create(new: list[_NewProposal], run: CampaignRun) -> None:
    """The run's new proposals, pending, with their history rows. Plain rows in batched
    statements, then the history copied from them in one statement (every proposal of this run
    is one it just made): the ORM's bulk creation with history spent 40 s on the 12,000
    proposals of a campaign over 100,000 people, adapting each value of each model twice."""
    if not new:
        return
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    user_id = run.started_by.pk if run.started_by is not None else None
    proposal = Proposal._meta.db_table
    with connection.cursor() as cursor:
        insert = (
            f"INSERT INTO {proposal} (campaign_id, beneficiary_id, run_id, amount, reasons, "
            "unmet, departement, age_band, household_type, status, decision_reason, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        for start in range(0, len(new), BATCH):
            cursor.executemany(
                insert,
                [
                    (
                        run.campaign_id,
                        made.beneficiary_id,
                        run.pk,
                        made.amount,
                        json.dumps(made.reasons),
                        "[]",
                        made.departement,
                        made.age_band,
                        made.household_type,
                        Status.PENDING,
                        "",
                        at,
                    )
                    for made in new[start : start + BATCH]
                ],
            )
        columns = ", ".join(field.column for field in Proposal._meta.concrete_fields)
        cursor.execute(
            f"INSERT INTO {Proposal.history.model._meta.db_table} ({columns}, history_date, "
            "history_change_reason, history_type, history_user_id) "
            f"SELECT {columns}, %s, NULL, '+', %s FROM {proposal} WHERE run_id = %s",
            [at, user_id, run.pk],
        )


def proposals_withdraw(*, reasons: dict[int, list[dict]], by: AbstractBaseUser | None) -> None:
    """Withdraw pending proposals (ids) with why (reasons in eligibility's form), their history
    rows written in the same statements."""
    now = timezone.now()
    ids = list(reasons)
    for start in range(0, len(ids), BATCH):
        batch = list(
            Proposal.objects.filter(pk__in=ids[start : start + BATCH], status=Status.PENDING)
        )
        for proposal in batch:
            proposal.status = Status.WITHDRAWN
            proposal.unmet = reasons[proposal.pk]
            proposal.decided_at = now
        bulk_update_with_history(
            batch, Proposal, ["status", "unmet", "decided_at"], default_user=by
        )


def campaigns_reevaluate(*, funder_id: int, beneficiary_ids: list[int]) -> int:
    """Run every active campaign of the funder over these people, whose data changed: a person
    who became eligible gets a proposal, one who no longer is loses their pending one. Returns
    the number of runs made."""
    campaigns = Campaign.objects.filter(
        program__funder_id=funder_id, is_active=True, program__is_active=True
    ).select_related("program__funder")
    made = 0
    for campaign in campaigns:
        try:
            campaign_run(
                campaign=campaign,
                trigger=CampaignRun.Trigger.DATA_CHANGE,
                beneficiary_ids=beneficiary_ids,
            )
        except CampaignWithoutCriteria:
            continue
        made += 1
    return made


def campaigns_due(*, now=None) -> list[Campaign]:
    """The scheduled campaigns whose next run has come: a day, a week or a month after the last
    full run (or never run)."""
    now = now or timezone.now()
    periods = {
        Campaign.Frequency.DAILY: timedelta(days=1),
        Campaign.Frequency.WEEKLY: timedelta(weeks=1),
        Campaign.Frequency.MONTHLY: timedelta(days=30),
    }
    due = []
    scheduled = Campaign.objects.filter(
        is_active=True, program__is_active=True, frequency__in=list(periods)
    ).select_related("program__funder")
    for campaign in scheduled:
        # A little slack, so that a daily run at 06:00:30 is not put off by the one at 06:00:45.
        period = periods[campaign.frequency] - timedelta(minutes=30)
        if campaign.last_run_at is None or now - campaign.last_run_at >= period:
            due.append(campaign)
    return due


def campaigns_run_due() -> int:
    """The scheduled runs whose day has come, one after the other. Returns the runs made."""
    made = 0
    for campaign in campaigns_due():
        try:
            campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.SCHEDULE)
        except InvalidState:
            continue  # no criteria yet: the campaign's page says so when someone runs it
        made += 1
    return made


# --- profiles ----------------------------------------------------------------------------------

PROFILE_FIELDS = (
    "postcode",
    "commune",
    "birth_date",
    "household_size",
    "dependent_children",
    "income_bracket",
    "attributes",
)


def profile_save(
    *,
    enrolment: Enrolment,
    data: dict,
    legal_basis: str = "",
    by: AbstractBaseUser | None = None,
    reevaluate: bool = True,
) -> BeneficiaryProfile:
    """Record what the funder knows of a person (the fields of `data` among PROFILE_FIELDS), and
    re-run the funder's campaigns over them after commit."""
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidState(message=f"Unknown profile fields: {sorted(unknown)}", field="data")
    with transaction.atomic():
        profile, _created = BeneficiaryProfile.objects.select_for_update().get_or_create(
            enrolment=enrolment
        )
        for name, value in data.items():
            setattr(profile, name, value)
        if legal_basis:
            profile.legal_basis = legal_basis
        profile.full_clean()
        profile.save()
        if reevaluate:
            profiles_changed(funder=enrolment.funder, beneficiary_ids=[enrolment.beneficiary_id])
        return profile


def profiles_changed(*, funder: Funder, beneficiary_ids: Iterable[int]) -> None:
    """Queue, after commit, one re-evaluation of the funder's campaigns over these people."""
    ids = sorted(set(beneficiary_ids))
    if ids:
        transaction.on_commit(lambda: tasks.campaigns_reevaluate.delay(funder.pk, ids))


# --- decisions ---------------------------------------------------------------------------------


def _lock_pending(proposal: Proposal, *, done: str) -> Proposal | None:
    """The proposal locked; None when it already has the decision `done` (a repeated request)."""
    locked = (
        Proposal.objects.select_for_update(of=("self",))
        .select_related("campaign__program__funder", "beneficiary")
        .get(pk=proposal.pk)
    )
    if locked.status == done:
        return None
    if locked.status != Status.PENDING:
        raise ProposalNotPending(field="proposal")
    return locked


def _valid_until(campaign: Campaign):
    """The campaign's own number of days, or else the program's default validity."""
    if not campaign.validity_days:
        _start, last_day = campaign.program.default_validity()
        return end_of_day(last_day) if last_day else None
    return end_of_day(timezone.localdate() + timedelta(days=campaign.validity_days - 1))


def proposal_accept(
    *, proposal: Proposal, by: AbstractBaseUser | None, amount: int | None = None
) -> Proposal:
    """Grant the proposal's aid (or `amount`, when the agent changed it) through the allocation
    service; the person is told of their new right. Accepting twice grants once."""
    with transaction.atomic():
        locked = _lock_pending(proposal, done=Status.ACCEPTED)
        if locked is None:
            return Proposal.objects.get(pk=proposal.pk)
        granted = validate_amount(locked.amount if amount is None else amount)
        program = locked.campaign.program
        # Locked and read first for a message that says how much is missing; the ledger's
        # guard on the float refuses an overdraft anyway.
        float_account = Account.objects.select_for_update().get(pk=program.float_account_id)
        if granted > float_account.available:
            raise InsufficientFunds(
                message=_("The program has %(available)s available; this grant needs %(needed)s.")
                % {
                    "available": format_money(float_account.available, program.currency),
                    "needed": format_money(granted, program.currency),
                },
                field="amount",
                available=float_account.available,
                needed=granted,
            )
        locked.allocation = allocation_create(
            program=program,
            beneficiary=locked.beneficiary,
            amount=granted,
            valid_from=timezone.now(),
            valid_until=_valid_until(locked.campaign),
            idempotency_key=f"proposal:{locked.pk}",
            by=by,
        )
        locked.status = Status.ACCEPTED
        locked.granted_amount = granted
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked._history_user = by
        locked.save()
        return locked


@dataclass
class AcceptanceResult:
    accepted: list[Proposal] = field(default_factory=list)
    refused: list[tuple[Proposal, str]] = field(default_factory=list)
    stopped: str = ""  # why it stopped at the program's funds
    left: int = 0  # proposals not reached after the stop


def proposal_accept_many(
    *, proposals: Iterable[Proposal], by: AbstractBaseUser | None
) -> AcceptanceResult:
    """Accept proposals in the order they were made, each in its own transaction, until the
    program's money runs out: there it stops, grants nothing more, and says how far it went."""
    result = AcceptanceResult()
    ordered = sorted(proposals, key=lambda proposal: (proposal.created_at, proposal.pk))
    # The grants' messages leave in batches as the grants commit, not a task each.
    with after_commit.together():
        for index, proposal in enumerate(ordered):
            try:
                result.accepted.append(proposal_accept(proposal=proposal, by=by))
            except InsufficientFunds as error:
                result.left = len(ordered) - index
                result.stopped = _(
                    "Stopped at the program's funds after %(accepted)s acceptances: %(left)s "
                    "proposals are still waiting. %(why)s"
                ) % {"accepted": len(result.accepted), "left": result.left, "why": error.message}
                break
            except DomainError as error:
                result.refused.append((proposal, str(error.message)))
    return result


def proposal_reject(*, proposal: Proposal, by: AbstractBaseUser | None, reason: str) -> Proposal:
    """Refuse a proposal; the reason is kept, to explain the decision later."""
    reason = (reason or "").strip()
    if not reason:
        raise DecisionReasonMissing(field="reason")
    with transaction.atomic():
        locked = _lock_pending(proposal, done=Status.REJECTED)
        if locked is None:
            return Proposal.objects.get(pk=proposal.pk)
        locked.status = Status.REJECTED
        locked.decision_reason = reason[:500]
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked._history_user = by
        locked.save()
        return locked
