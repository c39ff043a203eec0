"""The retention schedule (docs/RETENTION.md), enforced: every night each rule removes or
pseudonymises what passed its date, and writes what it did to RetentionPurge (the audit trail)
in the same transaction.

What is never purged here: the ledger (accounts, transfers, entries) and the payment decisions,
kept as accounting law requires (ten years, Code de commerce art. L123-22); a person's row stays
under a pseudonym for them (gdpr.services.beneficiary_erase). The durations are settings
(RETENTION_DAYS), so that a funder's own schedule can be followed; the defaults are those of
docs/RETENTION.md."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import DomainError
from funders.models import (
    Allocation,
    AllocationImport,
    BeneficiaryProfile,
    ProfileImport,
    ProgramExport,
)
from gdpr.models import RetentionPurge
from gdpr.services import beneficiary_erase
from wallet.models import Beneficiary, ContactChangeRequest, PushSubscription
from wallet.models.access import AppToken, SignInCode
from wallet.models.notifications import Notification

logger = logging.getLogger(__name__)

STALE_PERSON_REASON = "Retention schedule: no aid for {years} years"


def _days(rule: str) -> timedelta:
    return timedelta(days=settings.RETENTION_DAYS[rule])


def _sign_in_codes(cutoff: datetime) -> int:
    """Sign-in codes, used or not, a day after they expired."""
    return SignInCode.objects.filter(expires_at__lt=cutoff).delete()[0]


def _app_tokens(cutoff: datetime) -> int:
    """App sessions ended (signed out, or unused past APP_TOKEN_IDLE_DAYS) before the cutoff."""
    idle = timezone.now() - timedelta(days=settings.APP_TOKEN_IDLE_DAYS)
    ended = Q(revoked_at__lt=cutoff) | Q(last_used_at__lt=min(idle, cutoff))
    return AppToken.objects.filter(ended).delete()[0]


def _sign_in_messages(cutoff: datetime) -> int:
    """The outbox's copy of a sign-in code: its text, once the code is long dead."""
    return (
        Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE, created_at__lt=cutoff)
        .exclude(subject="", body="")
        .update(subject="", body="")
    )


def _outbox_texts(cutoff: datetime) -> int:
    """Every message's text, address and provider's words: the outbox keeps what was sent,
    when and whether it arrived (the funders' statistics), not to whom or what it said."""
    return (
        Notification.objects.filter(created_at__lt=cutoff, next_attempt_at__isnull=True)
        .exclude(subject="", body="", recipient="", error="", delivery_detail="")
        .update(subject="", body="", recipient="", error="", delivery_detail="")
    )


def _contact_changes(cutoff: datetime) -> int:
    """The old and new contacts of a change decided (or expired) long ago."""
    return (
        ContactChangeRequest.objects.filter(expires_at__lt=cutoff)
        .exclude(old_value="", new_value="")
        .update(old_value="", new_value="")
    )


def _push_subscriptions(cutoff: datetime) -> int:
    return PushSubscription.objects.filter(disabled_at__lt=cutoff).delete()[0]


def _access_logs(cutoff: datetime) -> int:
    """The admin's sign-in records (django-axes): usernames, addresses and browsers."""
    return (
        AccessAttempt.objects.filter(attempt_time__lt=cutoff).delete()[0]
        + AccessFailureLog.objects.filter(attempt_time__lt=cutoff).delete()[0]
        + AccessLog.objects.filter(attempt_time__lt=cutoff).delete()[0]
    )


def _import_files(cutoff: datetime) -> int:
    """The files funders sent (names, contacts, incomes) and their row-by-row reports; what
    they granted or changed stays where it was written."""
    count = 0
    for model in (AllocationImport, ProfileImport):
        count += (
            model.objects.filter(created_at__lt=cutoff)
            .exclude(content=b"", report=[])
            .update(content=b"", report=[], error="")
        )
    return count


def _program_exports(cutoff: datetime) -> int:
    """The export files built for funders (names, file numbers, payments), and their rows: the
    figures stay in the ledger and the rollup, an export can be asked for again. Each file is
    deleted before its row, so that a failure leaves a row whose file the next night deletes
    again (deleting a missing file is no error), never a file no row names."""
    old = list(ProgramExport.objects.filter(created_at__lt=cutoff).order_by("pk"))
    for export in old:
        if export.file:
            export.file.delete(save=False)
    return ProgramExport.objects.filter(pk__in=[export.pk for export in old]).delete()[0]


def _stale_people(cutoff: datetime) -> list[Beneficiary]:
    active = Allocation.objects.filter(beneficiary=OuterRef("pk"), status=Allocation.Status.ACTIVE)
    return list(
        Beneficiary.objects.filter(erased_at__isnull=True, created_at__lt=cutoff)
        .exclude(Exists(active))
        .annotate(
            last_end=Max(Coalesce("allocations__ended_at", "allocations__valid_until")),
        )
        .filter(Q(last_end__lt=cutoff) | Q(last_end__isnull=True))
        .order_by("pk")
    )


def _stale_profiles(cutoff: datetime) -> int:
    """Eligibility profiles (incomes, households) of people the funder gave no aid to since the
    cutoff, not updated since either: the funder's own files stay the source."""
    recent = (
        Allocation.objects.filter(
            beneficiary=OuterRef("enrolment__beneficiary"),
            program__funder=OuterRef("enrolment__funder"),
        )
        # An aid ended early (revoked) ended then, not at its planned end.
        .annotate(end=Coalesce("ended_at", "valid_until"))
        .filter(Q(status=Allocation.Status.ACTIVE) | Q(end__gte=cutoff) | Q(created_at__gte=cutoff))
    )
    return (
        BeneficiaryProfile.objects.filter(updated_at__lt=cutoff).exclude(Exists(recent)).delete()[0]
    )


def _stale_persons(cutoff: datetime) -> int:
    """People with no aid for years: erased as on their request (pseudonymised, their money
    history kept); one who still holds money is left for the funder to revoke first."""
    years = settings.RETENTION_DAYS["stale_people"] // 365
    count = 0
    for person in _stale_people(cutoff):
        try:
            beneficiary_erase(
                beneficiary=person, by=None, reason=STALE_PERSON_REASON.format(years=years)
            )
        except DomainError:
            logger.warning("retention: beneficiary %s holds money, not erased", person.pk)
            continue
        count += 1
    return count


RULES: dict[str, Callable[[datetime], int]] = {
    "sign_in_codes": _sign_in_codes,
    "app_tokens": _app_tokens,
    "sign_in_messages": _sign_in_messages,
    "outbox_texts": _outbox_texts,
    "contact_changes": _contact_changes,
    "push_subscriptions": _push_subscriptions,
    "access_logs": _access_logs,
    "import_files": _import_files,
    "program_exports": _program_exports,
    "stale_profiles": _stale_profiles,
    "stale_people": _stale_persons,
}


def retention_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every rule of the schedule; returns how many records each purged. Each rule runs
    in its own transaction with its audit record; a rule that purged nothing records it too,
    so the audit shows the schedule ran."""
    now = now or timezone.now()
    done = {}
    for rule, purge in RULES.items():
        cutoff = now - _days(rule)
        with transaction.atomic():
            count = purge(cutoff)
            RetentionPurge.objects.create(rule=rule, count=count, cutoff=cutoff)
        if count:
            logger.info("retention: %s purged %s record(s) older than %s", rule, count, cutoff)
        done[rule] = count
    return done
