"""Writes of the notifications outbox: queue a message, send it, and the messages of each event.

Sending holds the row's lock while the email or SMS backend works, so that two workers given
the same row send it once (PostgreSQL locks the row; SQLite, the embedded default, the whole
database, which the console backends keep short)."""

import functools
import logging
import re
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import lazy
from django.utils.text import Truncator

from core import after_commit, metrics
from core.french import for_sentence
from core.money import format_money
from core.one_statement import OneStatement
from core.time import format_instant, format_until, format_until_inclusive
from engine.codes import beneficiary_message, nearby_message
from engine.request import MerchantPlace
from engine.rules import PocketRules, merge_rules
from funders.models import Allocation, Funder
from ledger.models import Entry, Transfer
from merchants.selectors import ShopsNearby, refusal_shops_nearby, shops_nearby
from notifications import tasks
from notifications.channels import Carriers, deliver, mask_email, mask_phone, sms_text
from notifications.delivery import sms_opted_out
from notifications.errors import Undeliverable
from notifications.preferences import channels_allowed
from notifications.privacy import with_privacy_notice
from notifications.push import push_enabled, push_reachable
from wallet.authorize import pocket_rules
from wallet.models import Aidant, Beneficiary, ContactChangeRequest, Pocket
from wallet.models.decisions import Decision
from wallet.models.notifications import (
    ERROR_LENGTH,
    CaptureNotice,
    DecisionNotice,
    Notification,
    PushSubscription,
)

logger = logging.getLogger(__name__)

_Notice = TypeVar("_Notice", DecisionNotice, CaptureNotice)

Channel = Notification.Channel
Status = Notification.Status

# The wait before each new attempt after a failure; one more attempt than delays in all.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A row still due this long after its time lost its task (broker down at commit, worker gone):
# send_due_notifications queues it again.
REQUEUE_GRACE = timedelta(minutes=10)

_BLANK_LINES = re.compile(r"\n{3,}")

# What a number that texted STOP still gets by SMS: what its owner asked for (a sign-in code,
# the balance), and the warning that their contact details changed, which protects them.
SMS_ASKED_FOR = frozenset(
    {
        Notification.Kind.SIGN_IN_CODE,
        Notification.Kind.BALANCE_REPLY,
        Notification.Kind.CONTACT_CHANGED,
    }
)


def _sms_refused(kind: str, channel: str, recipient: str) -> bool:
    return channel == Channel.SMS and kind not in SMS_ASKED_FOR and sms_opted_out(recipient)


def _contacts(beneficiary: Beneficiary) -> list[tuple[str, str]]:
    contacts = []
    if beneficiary.email:
        contacts.append((Channel.EMAIL, beneficiary.email))
    if beneficiary.phone:
        contacts.append((Channel.SMS, beneficiary.phone.as_e164))
    # The devices are those subscribed when the message leaves, not now: no address is kept.
    if push_reachable(beneficiary):
        contacts.append((Channel.PUSH, ""))
    return contacts


def _render(kind: str, channel: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of one message, from notifications/<kind>/ in the active language. An
    app notification is the email's subject over the SMS's text."""
    folder = f"notifications/{kind}"
    subject = ""
    if channel != Channel.SMS:
        subject = " ".join(render_to_string(f"{folder}/email_subject.txt", context).split())
    if channel != Channel.EMAIL:
        return subject, sms_text(render_to_string(f"{folder}/sms.txt", context))
    body = render_to_string(f"{folder}/email_body.txt", context)
    lines = "\n".join(line.rstrip() for line in body.strip().splitlines())
    return subject, _BLANK_LINES.sub("\n\n", lines) + "\n"


# A task sends at most this many messages, on one email connection and one SMS client.
SEND_BATCH = 50


def _queue(notification_id: int) -> None:
    """Have the message sent once the surrounding transaction commits: by one
    tasks.send_notifications for each SEND_BATCH of the messages written in the same
    core.after_commit.together() block (an event's channels, a loop's people), one
    publish and one connection to each provider for the batch."""
    after_commit.hand_over(notification_id, to=notifications_queue, size=SEND_BATCH)


def notifications_queue(notification_ids: list[int]) -> None:
    """Hand these notifications to the workers, SEND_BATCH to a task."""
    for start in range(0, len(notification_ids), SEND_BATCH):
        tasks.send_notifications.delay(notification_ids[start : start + SEND_BATCH])


def notify(
    *,
    beneficiary: Beneficiary,
    kind: str,
    key: str,
    context: dict[str, Any],
    funder: Funder | None = None,
    channels: Collection[str] | None = None,
) -> list[Notification]:
    """Tell `beneficiary` about an event on every channel they can be reached on (email if they
    have an address, SMS if they have a mobile number, the app if it is subscribed to push on
    some device), or only on `channels`; sent once the surrounding transaction commits. `key`
    names the event within `kind` (an allocation's id): the same event told again writes and
    sends nothing more, and returns the rows of the first time.

    The templates notifications/<kind>/{email_subject,email_body,sms}.txt are rendered with
    `context` and `beneficiary`, in the beneficiary's preferred language. Values whose wording
    depends on the language (amounts, dates, sentences) are given lazy
    (`django.utils.functional.lazy`), so that they are formatted in that language too.

    `funder` is the funder whose aid the message is about: only its staff see the message.
    Without one, every funder the beneficiary is enrolled with sees it.

    A channel the beneficiary turned off for this kind (see preferences), or push while it is
    not set up, gets a skipped row that says why; with no channel at all, one row records that
    the message was skipped and why."""
    contacts = [
        (channel, recipient)
        for channel, recipient in _contacts(beneficiary)
        if channels is None or channel in channels
    ]
    if not contacts:
        channel = Channel.EMAIL if channels is None else next(iter(channels))
        return [
            _skipped(beneficiary, kind, key, channel, funder, Notification.SkipReason.NO_CONTACT)
        ]

    allowed = channels_allowed(beneficiary=beneficiary, kind=kind)
    notifications = []
    # The event's messages leave together (one task for its email and SMS), and with those
    # of the loop around it when it opened a block.
    with after_commit.together():
        for channel, recipient in contacts:
            dedupe_key = f"{kind}:{key}:{channel}"
            existing = Notification.objects.filter(dedupe_key=dedupe_key).first()
            if existing is not None:
                notifications.append(existing)
                continue
            if not allowed[channel] or _sms_refused(kind, channel, recipient):
                reason = Notification.SkipReason.OPTED_OUT
            elif channel == Channel.PUSH and not push_enabled():
                reason = Notification.SkipReason.PUSH_DISABLED
            else:
                reason = None
            if reason is not None:
                notifications.append(_skipped(beneficiary, kind, key, channel, funder, reason))
                continue
            notifications.append(
                _outbox_put(
                    beneficiary=beneficiary,
                    funder=funder,
                    kind=kind,
                    key=key,
                    channel=channel,
                    recipient=recipient,
                    context={**context, "beneficiary": beneficiary},
                )
            )
    return notifications


def _outbox_put(
    *,
    beneficiary: Beneficiary,
    funder: Funder | None,
    kind: str,
    key: str,
    channel: str,
    recipient: str,
    context: dict[str, Any],
) -> Notification:
    """The message of event `key` of `kind` to `recipient`, rendered in the person's language,
    written to the outbox once and sent after commit. get_or_create: of two calls racing for one
    event, one inserts and the other finds its row (the key is unique)."""
    with translation.override(beneficiary.preferred_language):
        subject, body = _render(kind, channel, context)
        body = with_privacy_notice(channel=channel, recipient=recipient, body=body)
    notification, created = Notification.objects.get_or_create(
        dedupe_key=f"{kind}:{key}:{channel}",
        defaults={
            "beneficiary": beneficiary,
            "funder": funder,
            "kind": kind,
            "channel": channel,
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "next_attempt_at": timezone.now(),
        },
    )
    if created:
        _queue(notification.pk)
    return notification


def _skipped(
    beneficiary: Beneficiary,
    kind: str,
    key: str,
    channel: str,
    funder: Funder | None,
    reason: str,
) -> Notification:
    notification, _ = Notification.objects.get_or_create(
        dedupe_key=f"{kind}:{key}:{channel}",
        defaults={
            "beneficiary": beneficiary,
            "funder": funder,
            "kind": kind,
            "channel": channel,
            "status": Status.SKIPPED,
            "skip_reason": reason,
        },
    )
    return notification


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d(?:[ .-]?\d){8,}")


def _error_text(exc: Exception) -> str:
    # Providers' errors often quote the address or number: logs and the admin keep it masked.
    text = f"{type(exc).__name__}: {exc}"
    text = _PHONE.sub(
        lambda m: mask_phone(m.group()), _EMAIL.sub(lambda m: mask_email(m.group()), text)
    )
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def notification_send(
    *, notification_id: int, carriers: Carriers | None = None
) -> Notification | None:
    """Make the next attempt of a notification that is still to be sent (queued, or failed with
    attempts left); do nothing for one sent, skipped or failed for good. After a failure the
    row is failed, with the error and, while attempts are left, when to try again; a message
    that nothing can carry any more (the app gone from every device) is skipped with the
    reason. With `carriers`, on the connections of a batch (notifications_send). Returns the
    row (None if there is no such row)."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None or notification.next_attempt_at is None:
            return notification
        now = timezone.now()
        if _sms_refused(notification.kind, notification.channel, notification.recipient):
            # The number texted STOP after the message was queued.
            notification.status = Status.SKIPPED
            notification.skip_reason = Notification.SkipReason.OPTED_OUT
            notification.next_attempt_at = None
            notification.save(update_fields=["status", "skip_reason", "next_attempt_at"])
            return notification
        notification.attempts += 1
        try:
            provider_message_id = deliver(notification, carriers)
        except Undeliverable as exc:
            notification.status = Status.SKIPPED
            notification.skip_reason = exc.reason
            notification.error = ""
            notification.next_attempt_at = None
        except Exception as exc:
            # Whatever the backend raised (a refused connection, a provider's error, a wrong
            # setting), the attempt is recorded and the retry schedule goes on.
            # The error's text, masked, in place of its traceback, which would quote it in full.
            notification.error = _error_text(exc)
            logger.warning(
                "notification %s: attempt %s of %s failed: %s",
                notification.pk,
                notification.attempts,
                MAX_ATTEMPTS,
                notification.error,
            )
            notification.status = Status.FAILED
            notification.next_attempt_at = (
                now + RETRY_DELAYS[notification.attempts - 1]
                if notification.attempts < MAX_ATTEMPTS
                else None
            )
        else:
            notification.status = Status.SENT
            notification.error = ""
            notification.sent_at = now
            notification.next_attempt_at = None
            notification.provider_message_id = (provider_message_id or "")[:200]
        notification.save(
            update_fields=[
                "status",
                "skip_reason",
                "error",
                "attempts",
                "sent_at",
                "next_attempt_at",
                "provider_message_id",
            ]
        )
    return notification


def notifications_send(*, notification_ids: Collection[int]) -> list[Notification]:
    """Make the next attempt of each of these notifications, as notification_send does, one
    after the other on one email connection and one SMS client (each row locked, sent and
    saved in a transaction of its own): a failure is that message's alone, recorded on its
    row. Returns the rows found."""
    with Carriers() as carriers:
        sent = [
            notification_send(notification_id=notification_id, carriers=carriers)
            for notification_id in notification_ids
        ]
    return [notification for notification in sent if notification is not None]


def notification_due_ids(*, limit: int = 500) -> list[int]:
    """Notifications still to be sent whose time passed more than REQUEUE_GRACE ago: their task
    was lost."""
    return list(
        Notification.objects.filter(next_attempt_at__lte=timezone.now() - REQUEUE_GRACE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


# The messages of each event


def allocation_notify(*, allocation: Allocation) -> list[Notification]:
    """Tell the beneficiary they were granted `allocation`: how much, from whom, until which
    day included, by email where it can be spent, and the app's link. Call it in the
    transaction that creates the allocation."""
    program = allocation.program
    rules = PocketRules.from_dict(
        merge_rules(program.rules, allocation.rules),
        valid_from=allocation.valid_from,
        valid_until=allocation.valid_until,
    )
    return notify(
        beneficiary=allocation.beneficiary,
        kind=Notification.Kind.ALLOCATION_GRANTED,
        key=str(allocation.pk),
        funder=program.funder,
        context={
            # "le Département de l'Isère" in French, the name alone in English.
            "funder": lazy(for_sentence, str)(program.funder.name),
            "program": program.name,
            "amount": lazy(format_money, str)(allocation.amount, allocation.currency),
            "until": (
                lazy(format_until_inclusive, str)(allocation.valid_until)
                if allocation.valid_until
                else ""
            ),
            "rules": lazy(rules.describe, list)(currency=allocation.currency),
            "app_url": settings.APP_URL,
        },
    )


# A shop's name in an SMS is cut to this: three names and their distances then add at most
# one part (153 characters) to the SMS, whatever the shops call themselves.
SMS_SHOP_NAME_LENGTH = 24


def _nearby_words(nearby: ShopsNearby | None, *, name_length: int | None = None) -> str:
    if nearby is None:
        return ""
    names = [shop.merchant.trade_name for shop in nearby.shops]
    if name_length is not None:
        names = [Truncator(name).chars(name_length) for name in names]
    pairs = [(name, shop.distance_m) for name, shop in zip(names, nearby.shops, strict=True)]
    return nearby_message(pairs, accepting=nearby.accepting)


def _decision_kind(decision: Decision) -> str:
    return (
        Notification.Kind.PAYMENT_DECLINED
        if decision.status == Decision.Status.DECLINED
        else Notification.Kind.PAYMENT_APPROVED
    )


def decision_notify(*, decision: Decision) -> list[Notification]:
    """Tell the beneficiary that a payment was accepted, in full or in part, or refused: how
    much, where, when and, for a refusal or a part refused, why in plain words and what to do;
    for a refusal because of the shop, the nearest shops where that aid is accepted.

    The message is about the funder whose aid paid or refused it; when several funders' aid is
    concerned, every funder helping the person may read it, so it names no aid."""
    # The funders of the pockets held and of the pocket the refusal names, read with the one
    # funder in one statement: two rows mean several.
    concerned = Q(
        pk__in=Pocket.objects.filter(decision_holds__decision=decision).values(
            "allocation__program__funder"
        )
    )
    if decision.reason_pocket:
        concerned |= Q(
            pk__in=Pocket.objects.filter(
                wallet_id=decision.wallet_id, allocation__program__name=decision.reason_pocket
            ).values("allocation__program__funder")
        )
    funders = list(Funder.objects.filter(concerned)[:2])
    funder = funders[0] if len(funders) == 1 else None
    pocket_name = decision.reason_pocket if funder is not None else ""
    kind = _decision_kind(decision)
    reason = (
        lazy(beneficiary_message, str)(
            decision.reason, pocket_name=pocket_name or None, details=decision.details
        )
        if decision.reason
        else ""
    )
    # Looked up only when a message is rendered, once for all of them: most people the drain
    # tells have no contact at all (one skipped row), and the shops' search was half of what
    # such a refusal cost the worker.
    nearby = functools.cache(lambda: refusal_shops_nearby(decision=decision))
    # No savepoint of its own: the drain gives each notice one, and outside a transaction
    # this one is the transaction.
    with transaction.atomic(savepoint=False):
        return notify(
            beneficiary=decision.wallet.beneficiary,
            kind=kind,
            key=str(decision.pk),
            funder=funder,
            context={
                "amount": lazy(format_money, str)(decision.amount, decision.currency),
                "approved": lazy(format_money, str)(decision.approved_amount, decision.currency),
                "partial": decision.status == Decision.Status.PARTIALLY_APPROVED,
                "merchant": decision.request.get("merchant", {}).get("name", ""),
                "when": lazy(format_instant, str)(decision.decided_at),
                "reason": reason,
                "nearby": lazy(lambda: _nearby_words(nearby()), str)(),
                "nearby_sms": lazy(
                    lambda: _nearby_words(nearby(), name_length=SMS_SHOP_NAME_LENGTH), str
                )(),
            },
        )


def decision_notice_put(*, decision: Decision, writes: OneStatement | None = None) -> None:
    """Have the beneficiary told of `decision`: a notice row in the payment's own transaction
    (one small insert; the message is rendered later, off the hot path, by
    decision_notices_drain). With `writes` (the authorization's one statement), the notice goes
    in it.

    No task is queued per payment: kombu's publish after commit cost the payment's process
    about 0.75 ms of its 4 (issue 19), for a message the drain, run every second by beat,
    writes as soon. A broker down at commit no longer concerns the payment at all."""
    notice = DecisionNotice(decision=decision)
    if writes is not None:
        writes.insert(notice)
    else:
        notice.save(force_insert=True)  # its key is the decision's: no UPDATE tried first


# A drain locks and tells this many notices in one transaction, and a run stops after
# DRAIN_MAX_BATCHES of them: a backlog is then shared with the runs beat starts every second on
# other workers (SKIP LOCKED), instead of held by one run for its whole length.
DRAIN_BATCH = 100
DRAIN_MAX_BATCHES = 10
# A notice whose message fails waits NOTICE_RETRY_FIRST, then twice as long after each failure,
# never more than NOTICE_RETRY_CAP: a moment's trouble (the database, a deployment) passes in
# seconds, a broken message is not tried every second. After NOTICE_MAX_ATTEMPTS (72 minutes of
# waits in all), it is failed for good.
NOTICE_RETRY_FIRST = timedelta(seconds=10)
NOTICE_RETRY_CAP = timedelta(minutes=30)
NOTICE_MAX_ATTEMPTS = 10


def notice_retry_delay(attempts: int) -> timedelta:
    """The wait after a notice's `attempts`-th failed attempt (from 1)."""
    return min(NOTICE_RETRY_FIRST * 2 ** (attempts - 1), NOTICE_RETRY_CAP)


def notices_drain() -> int:
    """Tell what waits in the notices: the payments' messages, then the captures' low-balance
    checks (so that a capture's low balance is told after its payment, when both wait). Run
    every second by beat (tasks.drain_notices). Returns the notices told.

    Most runs find nothing (a quiet hour, a night): one statement, without a transaction,
    answers that, where the two drains' locking reads take three each."""
    now = timezone.now()
    waiting = (
        DecisionNotice.objects.filter(_decision_notice_due(now))
        .values("pk")
        .union(CaptureNotice.objects.filter(_capture_notice_due(now)).values("pk"), all=True)
    )
    if not waiting[:1]:
        return 0
    return decision_notices_drain() + capture_notices_drain()


def _decision_notice_due(now: datetime) -> Q:
    # The not-null test lets decision_notice_due_idx, partial, answer.
    return Q(next_attempt_at__isnull=False) & (Q(attempts=0) | Q(next_attempt_at__lte=now))


def decision_notices_drain(
    *, batch_size: int = DRAIN_BATCH, max_batches: int = DRAIN_MAX_BATCHES
) -> int:
    """Tell the payments whose notice is due, oldest due first: write each one's outbox rows
    (decision_notify, which queues their sending after commit) and delete the notice, a batch
    per transaction. Runs in parallel share the work: each takes the notices no other run has
    locked (PostgreSQL; SQLite, the embedded default, runs one writer at a time). A notice whose
    message fails does not hold the others back: it is due again after its backoff
    (notice_retry_delay), and failed for good, logged once as an error, after its last attempt.
    A second run over the same notice finds its rows and writes nothing more. Returns the
    notices told.

    One clock decides when a notice is due: the application's (timezone.now(), the one tests
    drive with time_machine). A notice never tried is due at once, whatever its
    next_attempt_at, which the database stamped (its default) and which only orders it; a
    notice tried before is due at the time the application gave it after its failure (or an
    operator's retry). Comparing the database's stamp with the application's clock held a new
    notice back for as long as that clock was behind the database's."""
    return _notices_drain(
        # OF self: the decision, wallet and person read with the notice are not locked (the
        # wallet's lock is the payments'); decision_notice_due_idx answers, in its order.
        lambda now: (
            DecisionNotice.objects.filter(_decision_notice_due(now))
            .select_related("decision__wallet__beneficiary")
            .order_by("next_attempt_at")
        ),
        told_at_once=_unreachable_told,
        tell=lambda notice: decision_notify(decision=notice.decision),
        failed=_decision_notices_failed,
        batch_size=batch_size,
        max_batches=max_batches,
    )


def _notices_drain(
    due: Callable[[datetime], QuerySet[_Notice]],
    *,
    tell: Callable[[_Notice], object],
    failed: Callable[[list[tuple[_Notice, Exception]], datetime], None],
    told_at_once: Callable[[list[_Notice]], set[int]] | None = None,
    batch_size: int,
    max_batches: int,
) -> int:
    """The loop of the payments' and the captures' drains: lock a batch of the notices `due`
    at the application's clock (the ones no other run holds: SKIP LOCKED on PostgreSQL; SQLite
    runs one writer at a time), tell each one in a savepoint of its own (after `told_at_once`
    told those it could for the whole batch), delete those told and hand the others to
    `failed` with their error, a batch per transaction, until a batch comes back short or
    `max_batches` ran. Returns the notices told."""
    told = 0
    for _ in range(max_batches):
        with transaction.atomic():
            now = timezone.now()
            queryset = due(now)
            notices = list(queryset.select_for_update(skip_locked=True, of=("self",))[:batch_size])
            done = told_at_once(notices) if told_at_once is not None else set()
            failures = []
            with after_commit.together():
                for notice in notices:
                    if notice.pk in done:
                        continue
                    try:
                        with transaction.atomic():
                            tell(notice)
                    # Whatever one notice's failure is (a template, a backend's check, the
                    # database's answer), it must not stop the other notices of the batch.
                    except Exception as exc:
                        failures.append((notice, exc))
                    else:
                        done.add(notice.pk)
            queryset.model.objects.filter(pk__in=done).delete()
            if failures:
                failed(failures, now)
        told += len(done)
        if len(notices) < batch_size:
            break
    return told


def _unreachable_told(notices: list[DecisionNotice]) -> set[int]:
    """Tell, for the whole batch at once, the payments of people no channel reaches (no email,
    no mobile number, no app subscribed to push): what decision_notify writes for them, the one
    row saying the message was skipped for want of a contact, with the funder it names, in
    four statements for the batch where decision_notify takes eight a notice. Returns the
    notices told; on any failure none, and decision_notify tells each one as for anyone."""
    people = {
        notice.pk: notice.decision.wallet.beneficiary
        for notice in notices
        if not notice.decision.wallet.beneficiary.email
        and not notice.decision.wallet.beneficiary.phone
    }
    if not people:
        return set()
    try:
        with transaction.atomic():
            pushed = set(
                PushSubscription.objects.filter(
                    beneficiary__in=[person.pk for person in people.values()],
                    disabled_at__isnull=True,
                ).values_list("beneficiary_id", flat=True)
            )
            told = [n for n in notices if n.pk in people and people[n.pk].pk not in pushed]
            funders = _decision_funders([notice.decision for notice in told])
            Notification.objects.bulk_create(
                [
                    Notification(
                        beneficiary=people[notice.pk],
                        funder=funders.get(notice.decision_id),
                        kind=_decision_kind(notice.decision),
                        channel=Channel.EMAIL,
                        status=Status.SKIPPED,
                        skip_reason=Notification.SkipReason.NO_CONTACT,
                        dedupe_key=f"{_decision_kind(notice.decision)}:{notice.decision_id}:"
                        f"{Channel.EMAIL}",
                    )
                    for notice in told
                ],
                # A row already there (the payment told by another way) stays, as notify's
                # get_or_create leaves it.
                ignore_conflicts=True,
            )
    except Exception:
        logger.warning("the batch of unreachable people could not be told at once", exc_info=True)
        return set()
    return {notice.pk for notice in told}


def _decision_funders(decisions: list[Decision]) -> dict[int, Funder]:
    """decision_notify's funder of each decision, where it has one: the funder of the pockets
    held and of the pocket a refusal names, when that is a single funder."""
    named = {d.pk: (d.wallet_id, d.reason_pocket) for d in decisions if d.reason_pocket}
    concerned: dict[int, set[int]] = {d.pk: set() for d in decisions}
    for decision_id, funder_id in Pocket.objects.filter(
        decision_holds__decision__in=list(concerned)
    ).values_list("decision_holds__decision", "allocation__program__funder"):
        concerned[decision_id].add(funder_id)
    if named:
        by_name: dict[tuple[int, str], set[int]] = {}
        for wallet_id, name, funder_id in Pocket.objects.filter(
            wallet__in={wallet_id for wallet_id, _ in named.values()},
            allocation__program__name__in={name for _, name in named.values()},
        ).values_list("wallet_id", "allocation__program__name", "allocation__program__funder"):
            by_name.setdefault((wallet_id, name), set()).add(funder_id)
        for decision_id, key in named.items():
            concerned[decision_id] |= by_name.get(key, set())
    only = {decision_id: ids.pop() for decision_id, ids in concerned.items() if len(ids) == 1}
    funders = Funder.objects.in_bulk(set(only.values()))
    return {decision_id: funders[funder_id] for decision_id, funder_id in only.items()}


def _decision_notices_failed(
    failures: list[tuple[DecisionNotice, Exception]], now: datetime
) -> None:
    for notice, exc in failures:
        notice.attempts += 1
        # The error's text, masked (as a notification's), is what the admin shows.
        notice.error = _error_text(exc)
        if notice.attempts < NOTICE_MAX_ATTEMPTS:
            notice.next_attempt_at = now + notice_retry_delay(notice.attempts)
            logger.warning(
                "the notice of decision %s could not be told (attempt %s of %s), tried again at "
                "%s: %s",
                notice.pk,
                notice.attempts,
                NOTICE_MAX_ATTEMPTS,
                notice.next_attempt_at.isoformat(),
                notice.error,
            )
        else:
            notice.next_attempt_at = None
            notice.failed_at = now
            metrics.DECISION_NOTICES_FAILED.inc()
            logger.error(
                "the notice of decision %s could not be told after %s attempts: failed, kept "
                "for the operators (admin: payment messages to write)",
                notice.pk,
                notice.attempts,
                exc_info=exc,
            )
        notice.save(update_fields=["attempts", "error", "next_attempt_at", "failed_at"])


def decision_notices_retry(*, notices: Collection[DecisionNotice]) -> int:
    """Have the drain try these notices again now, failed ones included (once their cause is
    mended). Their attempts are kept: a failed notice that fails again is failed again at once,
    as a webhook delivery sent again is. Returns the notices made due."""
    return DecisionNotice.objects.filter(pk__in=[notice.pk for notice in notices]).update(
        next_attempt_at=timezone.now(), failed_at=None
    )


# 10 € in minor units; a currency without cents (XPF) reads it as 1 000 F, about 8 €.
LOW_BALANCE_FLOOR = 1_000


def low_balance_threshold(allocation: Allocation) -> int:
    """Under this, a pocket has little money left: 10 € or a tenth of the grant, the larger."""
    return _threshold(allocation.amount)


def _threshold(granted: int) -> int:
    return max(LOW_BALANCE_FLOOR, granted // 10)


def _crosses(threshold: int, *, after: int, taken: int) -> bool:
    """Whether a capture of `taken` that left `after` took the balance below `threshold`: at or
    above it before, below it after."""
    return after < threshold <= after + taken


def capture_low_balance_notify(*, capture: Transfer) -> list[Notification]:
    """Tell the beneficiary when the capture `capture` took a pocket's money below its
    low-balance threshold: once per crossing, since only the capture that crosses it (the
    balance was at or above before it, below after) tells. A refund that lifts the balance over
    the threshold again lets a later capture tell again.

    The balance is the money spent for good (captures), from the ledger's immutable entries up
    to this capture, so the answer is the same whenever and however often it is asked."""
    if capture.kind != Transfer.Kind.CAPTURE or capture.pending_transfer_id is None:
        return []
    pocket = (
        Pocket.objects.select_related(
            "account", "allocation__program__funder", "wallet__beneficiary"
        )
        .filter(account__holds_debited=capture.pending_transfer_id)
        .first()
    )
    if pocket is None or pocket.allocation.status != Allocation.Status.ACTIVE:
        return []
    after = (
        Entry.objects.filter(account_id=pocket.account_id, transfer_id__lte=capture.pk).aggregate(
            total=Sum("amount")
        )["total"]
        or 0
    )
    threshold = low_balance_threshold(pocket.allocation)
    if not _crosses(threshold, after=after, taken=capture.amount):
        return []
    if pocket.account.available >= threshold:
        return []  # money came back since: no longer worth a message
    allocation = pocket.allocation
    with transaction.atomic():
        return notify(
            beneficiary=pocket.wallet.beneficiary,
            kind=Notification.Kind.LOW_BALANCE,
            key=f"{pocket.pk}:{capture.pk}",
            funder=allocation.program.funder,
            context=_pocket_context(pocket),
        )


def capture_notices_put(*, captures: list[Transfer], writes: OneStatement | None = None) -> None:
    """Have the low-balance check of these captures made: a notice row each in the captures'
    own transaction (with `writes`, a capture's one statement, in it), which the drain takes
    within a second (capture_notices_drain), as a payment's. Nothing is queued at commit: a
    capture's publish to the broker cost its process as much as a payment's did (issue 19), and
    a broker down at that moment no longer concerns it."""
    if not captures:
        return
    if writes is not None:
        for capture in captures:
            writes.insert(CaptureNotice(capture=capture))
    else:
        CaptureNotice.objects.bulk_create([CaptureNotice(capture_id=c.pk) for c in captures])


# A capture whose check fails is tried again this much later: a broken check is not tried
# every second, as it was not before, when the sweep queued it again every few minutes.
CAPTURE_NOTICE_RETRY = timedelta(minutes=5)


def _capture_notice_due(now: datetime) -> Q:
    # A notice never tried has no time of its own (the capture's process stamps nothing the
    # drain compares with its clock): it is due at once.
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def capture_notices_drain(
    *, batch_size: int = DRAIN_BATCH, max_batches: int = DRAIN_MAX_BATCHES
) -> int:
    """Make the low-balance check of the captures whose notice is due, oldest capture first,
    and delete each notice with its check, a batch per transaction; parallel runs share the
    work as the payments' drain's do. A second check of the same capture tells nothing more
    (once per crossing). A check that fails is logged and tried again after
    CAPTURE_NOTICE_RETRY. Returns the notices done."""
    return _notices_drain(
        lambda now: (
            CaptureNotice.objects.filter(_capture_notice_due(now))
            .select_related("capture")
            .order_by("created_at")
        ),
        told_at_once=_captures_telling_nothing,
        tell=lambda notice: capture_low_balance_notify(capture=notice.capture),
        failed=_capture_notices_failed,
        batch_size=batch_size,
        max_batches=max_batches,
    )


def _captures_telling_nothing(notices: list[CaptureNotice]) -> set[int]:
    """The notices of the batch whose capture took no pocket below its low-balance threshold,
    nearly all of them (a pocket crosses it once per grant, or again after a refund), found for
    the whole batch in one statement where capture_low_balance_notify reads two a capture: done
    as its check would leave them, telling nothing. The others are checked one by one, and that
    check decides (the money available now, the message). Returns those notices; on any failure
    none, and each capture is checked alone."""
    captures = {
        notice.pk: notice.capture
        for notice in notices
        if notice.capture.kind == Transfer.Kind.CAPTURE
        and notice.capture.pending_transfer_id is not None
    }
    if not captures:
        return {notice.pk for notice in notices}  # no capture that resolved a hold: nothing to tell
    # What capture_low_balance_notify reads a capture at a time: the grant of the pocket whose
    # hold the capture resolved, if its allocation is active, and the pocket's balance after it.
    account = OuterRef("pending_transfer__debit_account")
    granted = Pocket.objects.filter(account=account, allocation__status=Allocation.Status.ACTIVE)
    after = (
        Entry.objects.filter(account=account, transfer_id__lte=OuterRef("pk"))
        .values("account")
        .annotate(total=Sum("amount"))
    )
    try:
        with transaction.atomic():
            checked = {
                pk: (grant, balance or 0)
                for pk, grant, balance in Transfer.objects.filter(
                    pk__in=[capture.pk for capture in captures.values()]
                )
                .annotate(
                    grant=Subquery(granted.values("allocation__amount")),
                    balance=Subquery(after.values("total")),
                )
                .values_list("pk", "grant", "balance")
            }
    except Exception:
        logger.warning("the batch of low-balance checks could not be made at once", exc_info=True)
        return set()
    quiet = {notice.pk for notice in notices if notice.pk not in captures}
    for notice_pk, capture in captures.items():
        grant, balance = checked[capture.pk]
        if grant is None or not _crosses(_threshold(grant), after=balance, taken=capture.amount):
            quiet.add(notice_pk)
    return quiet


def _capture_notices_failed(failures: list[tuple[CaptureNotice, Exception]], now: datetime) -> None:
    for notice, exc in failures:
        logger.warning(
            "the low-balance check of capture %s failed, tried again in %s: %s",
            notice.pk,
            CAPTURE_NOTICE_RETRY,
            _error_text(exc),
        )
    CaptureNotice.objects.filter(pk__in=[notice.pk for notice, _ in failures]).update(
        next_attempt_at=now + CAPTURE_NOTICE_RETRY
    )


def _pocket_context(pocket: Pocket) -> dict[str, Any]:
    allocation = pocket.allocation
    return {
        "funder": allocation.program.funder.name,
        "program": allocation.program.name,
        "available": lazy(format_money, str)(pocket.account.available, pocket.account.currency),
        "valid_until": (
            lazy(format_until, str)(allocation.valid_until) if allocation.valid_until else ""
        ),
    }


REMINDER_AHEAD = timedelta(days=7)
# Reminders leave between 9:00 and 20:00, Paris time: never an SMS at night. A pocket stays
# in the window for a day, so the first run of the morning finds those that entered it at night.
REMINDER_HOURS = range(9, 20)


def pocket_expiry_notify(*, pocket: Pocket) -> list[Notification]:
    """Remind the beneficiary that an aid ends soon, with what is left to spend. Once per
    pocket."""
    with transaction.atomic():
        return notify(
            beneficiary=pocket.wallet.beneficiary,
            kind=Notification.Kind.EXPIRY_REMINDER,
            key=str(pocket.pk),
            funder=pocket.allocation.program.funder,
            context=_pocket_context(pocket),
        )


def expiry_reminders_notify() -> int:
    """Remind of every active aid with money left that ends between 7 and 8 days from now and
    was not yet reminded of. Run hourly: outside REMINDER_HOURS it does nothing. Returns how
    many pockets it reminded of."""
    now = timezone.now()
    if timezone.localtime(now).hour not in REMINDER_HOURS:
        return 0
    reminded = Notification.objects.filter(
        kind=Notification.Kind.EXPIRY_REMINDER,
        beneficiary=OuterRef("wallet__beneficiary"),
        dedupe_key__startswith=Concat(
            Value(f"{Notification.Kind.EXPIRY_REMINDER}:"),
            Cast(OuterRef("pk"), CharField()),
            Value(":"),
        ),
    )
    due = (
        Pocket.objects.filter(
            allocation__status=Allocation.Status.ACTIVE,
            allocation__valid_until__gte=now + REMINDER_AHEAD,
            allocation__valid_until__lt=now + REMINDER_AHEAD + timedelta(days=1),
            account__balance__gt=F("account__pending"),
        )
        .exclude(Exists(reminded))
        .select_related("account", "allocation__program__funder", "wallet__beneficiary")
        .order_by("allocation__valid_until", "pk")
    )
    count = 0
    # Each pocket's reminder in a transaction of its own, their messages handed to the workers
    # SEND_BATCH to a task as their transactions commit.
    with after_commit.together():
        for pocket in due.iterator(chunk_size=500):
            pocket_expiry_notify(pocket=pocket)
            count += 1
    return count


def contact_change_notify(*, change: ContactChangeRequest) -> list[Notification]:
    """Warn the person that `change`, just confirmed, took effect: on their email and phone as
    they were before it, since the old contact is the one that can raise the alarm when the
    change was not theirs (after it, sign-in codes go to the new one). Call it in the
    transaction that confirms the change; once per change and channel."""
    person = change.beneficiary
    email = change.old_value if change.field == change.Field.EMAIL else person.email
    if change.field == change.Field.PHONE:
        phone = change.old_value
    else:
        phone = person.phone.as_e164 if person.phone else ""
    masked = mask_email if change.field == change.Field.EMAIL else mask_phone
    context = {
        "beneficiary": person,
        "field": change.field,
        "new": masked(change.new_value) if change.new_value else "",
    }
    with after_commit.together():  # the email and the SMS in one task
        return [
            _outbox_put(
                beneficiary=person,
                funder=None,
                kind=Notification.Kind.CONTACT_CHANGED,
                key=str(change.pk),
                channel=channel,
                recipient=recipient,
                context=context,
            )
            for channel, recipient in ((Channel.EMAIL, email), (Channel.SMS, phone))
            if recipient
        ]


def nonuse_notify(*, episode) -> list[Notification]:
    """One plain message to a person found not using their aid (funders/nonuse.py), with where
    to spend it near them, and one to each of their aidants. Once per episode."""
    allocation = episode.allocation
    pocket = allocation.pocket
    beneficiary = episode.beneficiary
    rules = pocket_rules(pocket)
    nearby = shops_nearby(
        rules=rules,
        place=MerchantPlace(
            name="", mcc="0000", country="FR", postcode=beneficiary.postcode or None
        ),
        postcode=beneficiary.postcode or None,
    )
    context = {
        **_pocket_context(pocket),
        "idle": episode.kind == "idle",
        "nearby": ", ".join(shop.merchant.trade_name for shop in nearby.shops),
    }
    funder = allocation.program.funder
    with after_commit.together():  # the person's messages and their aidants' in one task
        sent = notify(
            beneficiary=beneficiary,
            kind=Notification.Kind.NON_USE,
            key=str(episode.pk),
            funder=funder,
            context=context,
        )
        aidants = Aidant.objects.filter(wallet__beneficiary=beneficiary, revoked_at__isnull=True)
        for aidant in aidants:
            sent.append(
                _outbox_put(
                    beneficiary=beneficiary,
                    funder=funder,
                    kind=Notification.Kind.NON_USE_AIDANT,
                    key=f"{episode.pk}:{aidant.pk}",
                    channel=aidant.channel,
                    recipient=aidant.contact,
                    context={**context, "beneficiary": beneficiary, "aidant": aidant},
                )
            )
    return sent
