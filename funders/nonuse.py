"""Non-use: nobody is left with aid they do not use.

A program may say "no payment for N days" (nonuse_idle_days) and "ends within D days with more
than P % unspent" (nonuse_expiry_days, nonuse_unspent_percent). Every day, `nonuse_detect`
finds the people of its active aid that a setting describes. The first time a setting finds
someone, an **episode** opens: the person gets one plain message (by their preferences, with
where to spend nearby), their aidants are told, and the person goes on the agents' worklist to be
called. While the episode is open nothing more is sent; it ends when the setting no longer finds
them (they paid, or the aid ended), and a later stretch of non-use is a new episode.

The messages leave through `non_use_found` (funders.signals), received by the notifications
floor. Agents record each call (`nonuse_call_record`); the episode leaves the worklist once
the person was reached or does not need the aid.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from core import after_commit
from funders.models import (
    Allocation,
    BeneficiaryProfile,
    NonUseCall,
    NonUseEpisode,
    Program,
)
from funders.signals import non_use_found
from ledger.models import Entry, Transfer
from wallet.models import Aidant
from wallet.models.decisions import DecisionHold

Kind = NonUseEpisode.Kind
Outcome = NonUseCall.Outcome
# Outcomes after which nobody needs to call again in this episode.
SETTLED = frozenset({Outcome.REACHED, Outcome.NOT_NEEDED})


def _found(program: Program, allocation: Allocation, now: datetime) -> set[str]:
    """The kinds of non-use the program's settings find in this active allocation."""
    kinds = set()
    if program.nonuse_idle_days:
        since = allocation.last_paid_at or allocation.valid_from
        if since <= now - timedelta(days=program.nonuse_idle_days):
            kinds.add(Kind.IDLE)
    if (
        program.nonuse_expiry_days
        and program.nonuse_unspent_percent is not None
        and allocation.valid_until is not None
        and allocation.valid_until <= now + timedelta(days=program.nonuse_expiry_days)
        and allocation.pocket.account.available * 100
        > program.nonuse_unspent_percent * allocation.amount
    ):
        kinds.add(Kind.EXPIRING)
    return kinds


def nonuse_detect(*, now: datetime | None = None) -> int:
    """Open an episode for each person a setting newly finds, end those it no longer finds.
    Safe to run twice: an open episode is never opened again. Returns how many it opened."""
    now = now or timezone.now()
    opened = 0
    programs = Program.objects.filter(is_active=True).filter(
        Q(nonuse_idle_days__isnull=False) | Q(nonuse_expiry_days__isnull=False)
    )
    for program in programs:
        allocations = (
            Allocation.objects.filter(
                program=program, status=Allocation.Status.ACTIVE, valid_from__lte=now
            )
            .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
            .annotate(last_paid_at=Max("pocket__decision_holds__decision__decided_at"))
            .select_related("pocket__account", "beneficiary")
        )
        open_episodes = {
            (episode.allocation_id, episode.kind): episode
            for episode in NonUseEpisode.objects.filter(program=program, closed_at__isnull=True)
        }
        # Each episode opens in a transaction of its own; their messages leave in batches.
        with after_commit.together():
            for allocation in allocations.iterator(chunk_size=500):
                for kind in _found(program, allocation, now):
                    if open_episodes.pop((allocation.pk, kind), None) is None:
                        _open(program, allocation, kind, now)
                        opened += 1
        # What is left open was not found again (a payment, or the aid ended).
        NonUseEpisode.objects.filter(pk__in=[e.pk for e in open_episodes.values()]).update(
            closed_at=now
        )
    return opened


def _open(program: Program, allocation: Allocation, kind: str, now: datetime) -> NonUseEpisode:
    with transaction.atomic():
        aidants = Aidant.objects.filter(
            wallet__beneficiary=allocation.beneficiary_id, revoked_at__isnull=True
        ).exists()
        episode = NonUseEpisode.objects.create(
            program=program,
            allocation=allocation,
            beneficiary=allocation.beneficiary,
            kind=kind,
            opened_at=now,
            unspent=allocation.pocket.account.available,
            aidant_told=aidants,
        )
        non_use_found.send(sender=NonUseEpisode, episode=episode)
    return episode


def nonuse_call_record(*, episode: NonUseEpisode, outcome: str, note: str, by) -> NonUseCall:
    """An agent's call and its outcome; the person leaves the worklist once reached or once
    they said they do not need the aid."""
    with transaction.atomic():
        call = NonUseCall.objects.create(episode=episode, outcome=outcome, note=note, created_by=by)
        status = NonUseEpisode.Status.DONE if outcome in SETTLED else NonUseEpisode.Status.TO_CALL
        NonUseEpisode.objects.filter(pk=episode.pk).update(status=status)
        episode.status = status
    return call


# --- the figures of the funder's dashboard -----------------------------------------------------

AGE_BANDS = ((0, 25), (25, 40), (40, 60), (60, 75), (75, 200))


@dataclass
class NonUseLine:
    label: str
    granted: int = 0  # people holding the aid in the period
    spent: int = 0  # of them, those who paid with it at least once
    amount: int = 0  # granted, in minor units
    unspent: int = 0  # still unspent or returned unspent, in minor units
    reached_out: int = 0  # people an episode reached out to
    spent_after: int = 0  # of them, those who paid after the first outreach

    @property
    def share_unspent(self) -> int:
        """Whole per cent of the amount granted that is not spent."""
        return self.unspent * 100 // self.amount if self.amount else 0


def _age_band(birth_date: date | None, today: date) -> str:
    if birth_date is None:
        return "?"
    age = (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
    for low, high in AGE_BANDS:
        if low <= age < high:
            return f"{low}-{high - 1}" if high < 200 else f"{low}+"
    return "?"


def nonuse_figures(*, program: Program, by: str, today: date | None = None) -> list[NonUseLine]:
    """Non-use of the program's aid `by` "program", "commune" or "age" (as the funder's file
    says: its eligibility profile of the person): people granted, people who spent, the share
    unspent, outreach done and spending after outreach."""
    today = today or timezone.localdate()
    allocations = (
        Allocation.objects.filter(program=program)
        .select_related("pocket__account")
        .annotate(first_paid_at=Max("pocket__decision_holds__decision__decided_at"))
    )
    profiles = {
        profile.enrolment.beneficiary_id: profile
        for profile in BeneficiaryProfile.objects.filter(
            enrolment__funder=program.funder_id
        ).select_related("enrolment")
    }
    first_outreach = {}
    for episode in NonUseEpisode.objects.filter(program=program).order_by("opened_at"):
        first_outreach.setdefault(episode.beneficiary_id, episode.opened_at)
    paid = _paid_at(program)
    lines: dict[str, NonUseLine] = {}
    counted: dict[str, dict[str, set[int]]] = {}
    for allocation in allocations:
        person = allocation.beneficiary_id
        profile = profiles.get(person)
        if by == "commune":
            label = (profile.commune if profile else "") or "?"
        elif by == "age":
            label = _age_band(profile.birth_date if profile else None, today)
        else:
            label = program.name
        line = lines.setdefault(label, NonUseLine(label))
        people = counted.setdefault(
            label, {"granted": set(), "spent": set(), "out": set(), "after": set()}
        )
        people["granted"].add(person)
        line.amount += allocation.amount
        spent = _spent(allocation)
        line.unspent += allocation.amount - spent
        if spent > 0:
            people["spent"].add(person)
        if person in first_outreach:
            people["out"].add(person)
            if any(at > first_outreach[person] for at in paid.get(person, ())):
                people["after"].add(person)
    for label, line in lines.items():
        people = counted[label]
        line.granted, line.spent = len(people["granted"]), len(people["spent"])
        line.reached_out, line.spent_after = len(people["out"]), len(people["after"])
    return sorted(lines.values(), key=lambda line: line.label)


def _spent(allocation: Allocation) -> int:
    """What the pocket paid out or holds for payments under way, net of refunds: granted, minus
    what is still available and what returned to the program when it expired or was revoked."""
    returned = Entry.objects.filter(
        account=allocation.pocket.account_id,
        transfer__kind__in=[Transfer.Kind.EXPIRE, Transfer.Kind.REVOKE],
    ).aggregate(total=Sum("amount"))["total"]
    return allocation.amount - allocation.pocket.account.available - abs(int(returned or 0))


def _paid_at(program: Program) -> dict[int, list[datetime]]:
    """When each person of the program paid with its aid (approved, in full or in part)."""
    rows = DecisionHold.objects.filter(pocket__allocation__program=program).values_list(
        "pocket__wallet__beneficiary", "decision__decided_at"
    )
    paid: dict[int, list[datetime]] = {}
    for person, at in rows:
        paid.setdefault(person, []).append(at)
    return paid
