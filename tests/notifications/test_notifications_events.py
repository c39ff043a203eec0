"""Beneficiaries are told of each payment accepted or refused, of a low balance, and of an aid
ending in 7 days: once per event whatever runs twice, on the channels they chose, and a skipped
row says why when a choice blocks a message."""

from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError
from django.utils import timezone, translation

from engine.codes import beneficiary_message
from funders.services import allocation_revoke
from merchants.payments import payment_authorize, payment_capture, payment_refund
from notifications import services, tasks
from notifications.channels import sms_text
from notifications.errors import PreferenceInvalid, PreferenceLocked
from notifications.preferences import (
    notification_preferences,
    notification_preferences_set,
)
from notifications.services import (
    capture_low_balance_notify,
    decision_notify,
    expiry_reminders_notify,
    low_balance_threshold,
)
from tests.concurrency import run_together
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from wallet.models import Card, Decision, DecisionNotice
from wallet.models.notifications import CaptureNotice, Notification, NotificationPreference

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PHONE = "+33612345678"
Kind = Notification.Kind
Channel = Notification.Channel
Status = Notification.Status
SkipReason = Notification.SkipReason


@pytest.fixture(autouse=True)
def sms(settings):
    settings.SMS_BACKEND = "notifications.channels.OutboxSMSBackend"


@pytest.fixture
def queued(monkeypatch):
    """The outbox rows handed to the task queue (not sent), one by one or in batches."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.send_notification, "delay", ids.append)
    monkeypatch.setattr(tasks.send_notifications, "delay", ids.extend)
    return ids


@pytest.fixture
def committed(settings, django_capture_on_commit_callbacks):
    """`with committed():` commits the block, as far as the tests can tell: what it queued
    after commit runs, the tasks it queued run at once, as a worker would run them, and then
    the payments' notices are drained, as beat's drain does every second."""
    settings.CELERY_TASK_ALWAYS_EAGER = True

    @contextmanager
    def commit():
        with django_capture_on_commit_callbacks(execute=True):
            yield
        with django_capture_on_commit_callbacks(execute=True):
            tasks.drain_notices()

    return commit


@pytest.fixture
def person(db):
    return BeneficiaryFactory(
        first_name="Camille", email="camille@example.org", phone=PHONE, preferred_language="fr"
    )


@pytest.fixture
def card(person):
    return Card.objects.create(wallet=person.wallet, kind="virtual", status="active")


def grant(funder, person, amount=5_000, rules=None, **fields):
    program = make_program(funder=funder, rules=rules or {})
    return make_allocation(program=program, beneficiary=person, amount=amount, **fields)


def pay(merchant, card, amount, **fields):
    return payment_authorize(
        merchant=merchant,
        amount=amount,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        **fields,
    )


def rows(person, kind) -> dict[str, Notification]:
    return {n.channel: n for n in Notification.objects.filter(beneficiary=person, kind=kind)}


# Payments


def test_an_accepted_payment_is_told_by_email_not_by_sms_unless_asked(
    funder, person, card, merchant, queued, committed
):
    grant(funder, person)

    with committed():
        pay(merchant, card, 2_500)

    told = rows(person, Kind.PAYMENT_APPROVED)
    assert set(told) == {Channel.EMAIL, Channel.SMS}
    assert told[Channel.EMAIL].status == Status.QUEUED
    assert "25,00\u00a0€" in told[Channel.EMAIL].body
    assert merchant.trade_name in told[Channel.EMAIL].body
    assert told[Channel.EMAIL].funder == funder
    assert (told[Channel.SMS].status, told[Channel.SMS].skip_reason) == (
        Status.SKIPPED,
        SkipReason.OPTED_OUT,
    )
    assert queued == [told[Channel.EMAIL].pk]


def test_the_decision_is_told_by_the_drain_once_and_queues_no_task(
    funder, person, card, merchant, monkeypatch, django_capture_on_commit_callbacks
):
    grant(funder, person)
    published: list = []
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda *a, **k: published.append(a))

    with django_capture_on_commit_callbacks(execute=True):
        decision = pay(merchant, card, 2_500, idempotency_key="once")
        pay(merchant, card, 2_500, idempotency_key="once")  # a replay tells nothing more
    assert published == []  # the payment left nothing for the broker
    assert list(DecisionNotice.objects.values_list("decision_id", flat=True)) == [decision.pk]
    assert not Notification.objects.filter(kind=Kind.PAYMENT_APPROVED).exists()

    assert tasks.drain_notices() == 1
    assert Notification.objects.filter(kind=Kind.PAYMENT_APPROVED).count() == 2  # email, SMS
    assert not DecisionNotice.objects.exists()
    assert tasks.drain_notices() == 0


def test_the_drain_tells_in_batches_and_leaves_a_failing_notice_for_a_later_run(
    funder, person, card, merchant, monkeypatch, caplog, time_machine
):
    time_machine.move_to(timezone.now() + timedelta(seconds=1))  # ahead of the database's clock
    grant(funder, person, amount=50_000)
    decisions = [pay(merchant, card, 100 + i) for i in range(5)]
    broken = decisions[1]
    tell = services.decision_notify

    def decision_notify(*, decision):
        if decision.pk == broken.pk:
            raise RuntimeError("template missing")
        return tell(decision=decision)

    monkeypatch.setattr(services, "decision_notify", decision_notify)
    assert services.decision_notices_drain(batch_size=2) == 4
    assert list(DecisionNotice.objects.values_list("decision_id", flat=True)) == [broken.pk]
    assert f"the notice of decision {broken.pk} could not be told" in caplog.text
    told = Notification.objects.filter(kind=Kind.PAYMENT_APPROVED, channel=Channel.EMAIL)
    assert sorted(told.values_list("dedupe_key", flat=True)) == sorted(
        f"{Kind.PAYMENT_APPROVED}:{d.pk}:{Channel.EMAIL}" for d in decisions if d != broken
    )

    monkeypatch.undo()
    assert services.decision_notices_drain() == 0  # not due before its wait
    time_machine.shift(services.notice_retry_delay(1))
    assert services.decision_notices_drain() == 1
    assert not DecisionNotice.objects.exists()
    assert told.count() == 5


def test_a_drain_stops_after_its_batches_and_the_next_run_goes_on(funder, person, card, merchant):
    grant(funder, person, amount=50_000)
    for i in range(5):
        pay(merchant, card, 100 + i)

    assert services.decision_notices_drain(batch_size=2, max_batches=2) == 4
    assert DecisionNotice.objects.count() == 1
    assert services.decision_notices_drain(batch_size=2, max_batches=2) == 1
    assert not DecisionNotice.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_share_the_notices_and_tell_each_once(funder, person, card, merchant):
    grant(funder, person, amount=50_000)
    decisions = [pay(merchant, card, 100 + i) for i in range(12)]

    # Small batches, so that each drain locks some notices while the other skips them.
    outcomes = run_together(
        [lambda: services.decision_notices_drain(batch_size=3, max_batches=10)] * 2
    )

    assert all(isinstance(told, int) for told in outcomes), outcomes
    assert sum(outcomes) == len(decisions)
    assert not DecisionNotice.objects.exists()
    emails = Notification.objects.filter(kind=Kind.PAYMENT_APPROVED, channel=Channel.EMAIL)
    assert sorted(emails.values_list("dedupe_key", flat=True)) == sorted(
        f"{Kind.PAYMENT_APPROVED}:{d.pk}:{Channel.EMAIL}" for d in decisions
    )


def test_a_refused_payment_says_why_in_plain_words_and_what_to_do(
    funder, person, card, merchant, queued, committed
):
    grant(funder, person, rules={"zone": {"departements": ["73"]}})

    with committed():
        decision = pay(merchant, card, 2_500)  # a shop in Isère (38)

    assert (decision.status, decision.reason) == (Decision.Status.DECLINED, "outside_zone")
    told = rows(person, Kind.PAYMENT_DECLINED)
    assert {n.status for n in told.values()} == {Status.QUEUED}
    with translation.override("fr"):
        reason = beneficiary_message(
            "outside_zone", pocket_name=decision.reason_pocket, details=decision.details
        )
    assert "ce commerce est hors de la zone" in reason
    assert reason in told[Channel.EMAIL].body
    assert sms_text(reason) in told[Channel.SMS].body
    assert "25,00 €" in told[Channel.SMS].body
    assert told[Channel.SMS].funder == funder


# A shop refused for its kind: the bar is in Grenoble (45.18756 N, 5.73569 E), the food shops on
# its meridian, north of it, where the distance is R·Δφ (R = 6371.0088 km): 0.004° is 444.78 m,
# 0.011° is 1,223.15 m, 0.020° is 2,223.90 m.
FOOD_ONLY = {"categories": {"allow_groups": ["food"]}}


@pytest.fixture
def bar(db):
    return make_merchant(trade_name="Bar du Centre", mcc="5813", latitude="45.18756")


def food_shops(*names: str) -> None:
    for name, latitude in zip(names, ["45.19156", "45.19856", "45.20756"], strict=False):
        make_merchant(trade_name=name, latitude=latitude, longitude="5.73569")


def test_a_refusal_for_the_kind_of_shop_names_the_nearest_shops_that_accept_the_aid(
    funder, person, card, bar, queued, committed
):
    grant(funder, person, rules=FOOD_ONLY)
    food_shops("Épicerie Nord", "Marché Notre-Dame", "Supérette Berriat")

    with committed():
        decision = pay(bar, card, 1_800)

    assert decision.reason == "merchant_category_not_allowed"
    told = rows(person, Kind.PAYMENT_DECLINED)
    nearby = (
        "Où utiliser cette aide près d'ici : Épicerie Nord (445 m), "
        "Marché Notre-Dame (1,2 km), Supérette Berriat (2,2 km)."
    )
    assert told[Channel.SMS].body.endswith(" " + nearby)
    assert nearby in sms_text(told[Channel.EMAIL].body)


def test_the_nearest_shops_in_english(funder, card, bar, queued, committed):
    sam = BeneficiaryFactory(
        first_name="Sam", email="sam@example.org", phone=PHONE, preferred_language="en"
    )
    grant(funder, sam, rules=FOOD_ONLY)
    food_shops("Épicerie Nord", "Marché Notre-Dame")
    sam_card = Card.objects.create(wallet=sam.wallet, kind="virtual", status="active")

    with committed():
        pay(bar, sam_card, 1_800)

    told = rows(sam, Kind.PAYMENT_DECLINED)
    nearby = "Where to use this aid near here: Épicerie Nord (445 m), Marché Notre-Dame (1.2 km)."
    assert told[Channel.SMS].body.endswith(" " + nearby)
    assert nearby in sms_text(told[Channel.EMAIL].body)


def test_an_aid_no_shop_accepts_says_so_in_the_sms(funder, person, card, bar, queued, committed):
    grant(funder, person, rules=FOOD_ONLY)

    with committed():
        pay(bar, card, 1_800)

    sms = rows(person, Kind.PAYMENT_DECLINED)[Channel.SMS]
    assert sms.body.endswith(" Aucun commerce n'accepte cette aide pour le moment.")


def test_long_shop_names_add_at_most_one_part_to_the_sms(
    funder, person, card, bar, queued, committed
):
    grant(funder, person, rules=FOOD_ONLY)
    food_shops(
        "Épicerie solidaire et coopérative du quartier Saint-Bruno",
        "Maison de l'alimentation durable de l'agglomération grenobloise",
        "Supérette de proximité ouverte tous les jours de la semaine",
    )

    with committed():
        pay(bar, card, 1_800)

    sms = rows(person, Kind.PAYMENT_DECLINED)[Channel.SMS]
    nearby = sms.body[sms.body.index("Où utiliser") :]
    assert nearby == (
        "Où utiliser cette aide près d'ici : Épicerie solidaire et c... (445 m), "
        "Maison de l'alimentatio... (1,2 km), Supérette de proximité ... (2,2 km)."
    )
    assert len(nearby) <= 153  # one part of a long SMS, in the GSM alphabet
    # The email has room for the whole names.
    email = rows(person, Kind.PAYMENT_DECLINED)[Channel.EMAIL].body
    assert "Supérette de proximité ouverte tous les jours de la semaine" in email


def test_a_refusal_for_the_money_left_names_no_shop(
    funder, person, card, merchant, queued, committed
):
    grant(funder, person, amount=1_000, rules=FOOD_ONLY)
    food_shops("Épicerie Nord")

    with committed():
        decision = pay(merchant, card, 2_500)

    assert decision.reason == "insufficient_funds"
    sms = rows(person, Kind.PAYMENT_DECLINED)[Channel.SMS]
    assert "Épicerie Nord" not in sms.body and "commerce" not in sms.body


def test_a_decision_over_two_funders_aid_names_no_aid(person, card, merchant, queued, committed):
    grant(FunderFactory(), person, amount=1_000)
    grant(FunderFactory(), person, amount=1_000)

    with committed():
        decision = pay(merchant, card, 2_500, partial_approval_allowed=True)

    assert decision.status == Decision.Status.PARTIALLY_APPROVED
    email = rows(person, Kind.PAYMENT_APPROVED)[Channel.EMAIL]
    assert email.funder is None
    assert "20,00\u00a0€" in email.body and "25,00\u00a0€" in email.body
    for name in Decision.objects.get().wallet.pockets.values_list(
        "allocation__program__name", flat=True
    ):
        assert name not in email.body


def test_telling_a_decision_twice_writes_once_and_the_task_twice_sends_one_email(
    funder, person, card, merchant, mailoutbox, queued, django_capture_on_commit_callbacks
):
    grant(funder, person)
    decision = pay(merchant, card, 2_500)
    with django_capture_on_commit_callbacks(execute=True):
        first = decision_notify(decision=decision)
        assert tasks.drain_notices() == 1
        assert tasks.drain_notices.apply().get() == 0
        again = decision_notify(decision=decision)

    assert [n.pk for n in again] == [n.pk for n in first]
    assert Notification.objects.filter(kind=Kind.PAYMENT_APPROVED).count() == 2
    email = rows(person, Kind.PAYMENT_APPROVED)[Channel.EMAIL]
    assert queued == [email.pk]
    tasks.send_notification(email.pk)
    tasks.send_notification(email.pk)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == email.subject


# Preferences


def test_the_defaults_send_everything_but_accepted_payments_by_sms(person):
    preferences = {(p.kind, p.channel): p for p in notification_preferences(beneficiary=person)}

    assert not preferences[(Kind.PAYMENT_APPROVED, Channel.SMS)].enabled
    off = [key for key, p in preferences.items() if not p.enabled]
    assert off == [(Kind.PAYMENT_APPROVED, Channel.SMS)]
    assert preferences[(Kind.ALLOCATION_GRANTED, Channel.SMS)].locked
    assert preferences[(Kind.SIGN_IN_CODE, Channel.EMAIL)].locked
    assert not preferences[(Kind.LOW_BALANCE, Channel.PUSH)].locked
    assert (Kind.BALANCE_REPLY, Channel.SMS) not in preferences


def test_a_message_turned_off_is_skipped_with_the_reason(
    funder, person, card, merchant, queued, committed
):
    notification_preferences_set(
        beneficiary=person,
        choices={Kind.PAYMENT_APPROVED: {Channel.EMAIL: False, Channel.SMS: True}},
    )
    grant(funder, person)

    with committed():
        pay(merchant, card, 2_500)

    told = rows(person, Kind.PAYMENT_APPROVED)
    assert (told[Channel.EMAIL].status, told[Channel.EMAIL].skip_reason) == (
        Status.SKIPPED,
        SkipReason.OPTED_OUT,
    )
    assert told[Channel.EMAIL].body == ""
    assert told[Channel.SMS].status == Status.QUEUED
    assert queued == [told[Channel.SMS].pk]


def test_a_new_aid_and_a_sign_in_code_cannot_be_turned_off(person):
    for kind in (Kind.ALLOCATION_GRANTED, Kind.SIGN_IN_CODE):
        with pytest.raises(PreferenceLocked) as refused:
            notification_preferences_set(beneficiary=person, choices={kind: {Channel.SMS: False}})
        assert (refused.value.code, refused.value.field) == (
            "notification_always_sent",
            f"{kind}.sms",
        )
    assert not NotificationPreference.objects.exists()


def test_a_new_aid_is_told_whatever_the_choices_stored(funder, person, queued):
    # Even a choice written around the service does not silence it.
    NotificationPreference.objects.create(
        beneficiary=person, kind=Kind.ALLOCATION_GRANTED, channel=Channel.SMS, enabled=False
    )

    grant(funder, person)

    assert {n.status for n in rows(person, Kind.ALLOCATION_GRANTED).values()} == {Status.QUEUED}


@pytest.mark.parametrize(
    ("choices", "field"),
    [
        ({"nonsense": {"sms": False}}, "nonsense"),
        ({"low_balance": {"pigeon": False}}, "low_balance.pigeon"),
        ({"low_balance": {"sms": "no"}}, "low_balance.sms"),
        ({"balance_reply": {"sms": False}}, "balance_reply"),
        ({"low_balance": True}, "low_balance"),
    ],
)
def test_an_invalid_choice_changes_nothing(person, choices, field):
    with pytest.raises(PreferenceInvalid) as refused:
        notification_preferences_set(
            beneficiary=person, choices={"expiry_reminder": {"sms": False}, **choices}
        )

    assert (refused.value.code, refused.value.field) == ("invalid_notification_preference", field)
    assert not NotificationPreference.objects.exists()


def test_choices_are_kept_and_changed(person):
    notification_preferences_set(beneficiary=person, choices={"low_balance": {"sms": False}})
    result = notification_preferences_set(
        beneficiary=person, choices={"low_balance": {"sms": True, "email": False}}
    )

    chosen = {(p.kind, p.channel): p.enabled for p in result}
    assert chosen[("low_balance", "sms")] is True
    assert chosen[("low_balance", "email")] is False
    assert NotificationPreference.objects.filter(beneficiary=person).count() == 2


# Low balance


@pytest.mark.parametrize(
    ("granted", "threshold"), [(5_000, 1_000), (10_000, 1_000), (30_000, 3_000), (25_550, 2_555)]
)
def test_the_threshold_is_10_euros_or_a_tenth_of_the_grant(granted, threshold, funder, person):
    assert low_balance_threshold(grant(funder, person, amount=granted)) == threshold


def low_balance_rows(person) -> list[Notification]:
    return list(
        Notification.objects.filter(
            beneficiary=person, kind=Kind.LOW_BALANCE, channel=Channel.EMAIL
        ).order_by("pk")
    )


def test_a_low_balance_is_told_once_per_crossing(funder, person, card, merchant, queued, committed):
    allocation = grant(funder, person, amount=5_000)  # threshold: 10 €

    with committed():
        pay(merchant, card, 3_000, capture=True)  # 20 € left
    assert low_balance_rows(person) == []

    with committed():
        crossing = pay(merchant, card, 1_500, capture=True)  # 5 € left
    [told] = low_balance_rows(person)
    assert "5,00\u00a0€" in told.body
    assert allocation.program.name in told.body
    assert told.funder == funder

    with committed():
        pay(merchant, card, 200, capture=True)  # still under: no new crossing
    assert len(low_balance_rows(person)) == 1

    with committed():
        payment_refund(merchant=merchant, decision=crossing, amount=1_500, idempotency_key="r")
        pay(merchant, card, 1_500, capture=True)  # 18 € back, then under again
    assert len(low_balance_rows(person)) == 2


def test_the_low_balance_check_run_twice_tells_once(
    funder, person, card, merchant, queued, django_capture_on_commit_callbacks
):
    grant(funder, person, amount=5_000)
    decision = pay(merchant, card, 4_500)
    payment_capture(merchant=merchant, decision=decision, idempotency_key="c")
    transfer = decision.holds.get().hold.resolution

    with django_capture_on_commit_callbacks(execute=True):
        first = capture_low_balance_notify(capture=transfer)
        assert services.capture_notices_drain() == 1  # the capture's own notice, checked again

    assert len(first) == 2
    assert Notification.objects.filter(kind=Kind.LOW_BALANCE).count() == 2
    assert len(queued) == 2
    assert not CaptureNotice.objects.exists()


def test_a_capture_queues_nothing_and_its_low_balance_is_told_after_its_payment(
    funder, person, card, merchant, queued, monkeypatch, django_capture_on_commit_callbacks
):
    grant(funder, person, amount=5_000)
    published: list = []
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda *a, **k: published.append(a))

    with django_capture_on_commit_callbacks(execute=True):
        decision = pay(merchant, card, 4_500)
        payment_capture(merchant=merchant, decision=decision, idempotency_key="c")
    assert published == []  # the capture left nothing for the broker
    transfer = decision.holds.get().hold.resolution
    assert list(CaptureNotice.objects.values_list("capture_id", flat=True)) == [transfer.pk]
    assert low_balance_rows(person) == []

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.drain_notices() == 2  # the payment's notice, then the capture's
    emails = Notification.objects.filter(beneficiary=person, channel=Channel.EMAIL).order_by("pk")
    kinds = [n.kind for n in emails if n.kind != Kind.ALLOCATION_GRANTED]
    assert kinds == [Kind.PAYMENT_APPROVED, Kind.LOW_BALANCE]
    assert not CaptureNotice.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.drain_notices() == 0
    assert len(low_balance_rows(person)) == 1


@pytest.fixture
def checked_alone(monkeypatch) -> list[int]:
    """The captures whose low-balance check the drain made one by one, in order."""
    checked: list[int] = []
    check = services.capture_low_balance_notify

    def recorded(*, capture):
        checked.append(capture.pk)
        return check(capture=capture)

    monkeypatch.setattr(services, "capture_low_balance_notify", recorded)
    return checked


def test_the_captures_that_cross_no_threshold_are_checked_for_the_whole_batch_at_once(
    funder, person, card, merchant, queued, checked_alone, django_capture_on_commit_callbacks
):
    grant(funder, person, amount=5_000)  # threshold: 10 €
    other = BeneficiaryFactory(email="dominique@example.org")
    ended = grant(funder, other, amount=5_000)
    other_card = Card.objects.create(wallet=other.wallet, kind="virtual", status="active")
    pay(merchant, other_card, 4_500, capture=True)  # would cross, but its aid is revoked below
    for amount in (1_000, 1_500):
        pay(merchant, card, amount, capture=True)  # 40 €, then 25 € left: no crossing
    crossing = pay(merchant, card, 2_000, capture=True)  # 5 € left
    allocation_revoke(allocation=ended, reason="moved away")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.capture_notices_drain() == 4

    assert checked_alone == [crossing.holds.get().hold.resolution.pk]
    [told] = low_balance_rows(person)
    assert "5,00\u00a0€" in told.body
    assert low_balance_rows(other) == []
    assert not CaptureNotice.objects.exists()


def test_when_the_batch_check_fails_each_capture_is_checked_alone(
    funder,
    person,
    card,
    merchant,
    queued,
    checked_alone,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
):
    grant(funder, person, amount=5_000)
    pay(merchant, card, 1_000, capture=True)
    crossing = pay(merchant, card, 3_500, capture=True)  # 5 € left

    def broken(*args, **kwargs):
        raise DatabaseError("statement timeout")

    monkeypatch.setattr(services, "Subquery", broken)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.capture_notices_drain() == 2

    assert len(checked_alone) == 2
    assert crossing.holds.get().hold.resolution.pk in checked_alone
    assert len(low_balance_rows(person)) == 1
    assert "could not be made at once" in caplog.text
    assert not CaptureNotice.objects.exists()


def test_a_failing_low_balance_check_is_tried_again_minutes_later_not_every_second(
    funder, person, card, merchant, queued, monkeypatch, caplog, time_machine
):
    grant(funder, person, amount=5_000)
    decision = pay(merchant, card, 4_500)
    payment_capture(merchant=merchant, decision=decision, idempotency_key="c")
    tried: list[int] = []
    check = services.capture_low_balance_notify

    def broken(*, capture):
        tried.append(capture.pk)
        raise RuntimeError("template missing")

    monkeypatch.setattr(services, "capture_low_balance_notify", broken)
    made = CaptureNotice.objects.get().created_at
    failed_at = timezone.now()
    assert services.capture_notices_drain() == 0
    assert services.capture_notices_drain() == 0
    assert len(tried) == 1  # postponed: not tried again at the next run
    assert "template missing" in caplog.text
    notice = CaptureNotice.objects.get()
    # The notice keeps when it was made; its next attempt has a field of its own.
    assert notice.created_at == made
    assert failed_at + services.CAPTURE_NOTICE_RETRY <= notice.next_attempt_at
    assert notice.next_attempt_at <= timezone.now() + services.CAPTURE_NOTICE_RETRY

    monkeypatch.setattr(services, "capture_low_balance_notify", check)
    time_machine.move_to(timezone.now() + services.CAPTURE_NOTICE_RETRY)
    assert services.capture_notices_drain() == 1
    assert len(low_balance_rows(person)) == 1
    assert not CaptureNotice.objects.exists()


def test_a_new_capture_notice_is_due_at_once_whatever_the_clock_that_stamped_it(
    funder, person, card, merchant, queued
):
    grant(funder, person, amount=5_000)
    decision = pay(merchant, card, 4_500)
    payment_capture(merchant=merchant, decision=decision, idempotency_key="c")
    # Made by a process whose clock is an hour ahead of the drain's.
    CaptureNotice.objects.update(created_at=timezone.now() + timedelta(hours=1))
    assert services.capture_notices_drain() == 1
    assert len(low_balance_rows(person)) == 1


def test_an_aid_that_ended_is_not_told_low(funder, person, card, merchant, queued):
    allocation = grant(funder, person, amount=5_000)
    decision = pay(merchant, card, 4_500)
    allocation_revoke(allocation=allocation, reason="moved away")
    payment_capture(merchant=merchant, decision=decision, idempotency_key="c")

    capture = decision.holds.get().hold.resolution
    assert capture_low_balance_notify(capture=capture) == []


# Expiry reminder


@pytest.fixture
def ends_31_march(funder, person, time_machine):
    """50 € valid until 31 March 2027 included (valid_until: 1 April, 00:00 in Paris)."""
    time_machine.move_to(datetime(2027, 3, 1, 12, 0, tzinfo=PARIS), tick=False)
    return grant(
        funder,
        person,
        amount=5_000,
        valid_from=datetime(2027, 3, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )


def reminders(person) -> dict[str, Notification]:
    return rows(person, Kind.EXPIRY_REMINDER)


def test_the_reminder_comes_7_days_before_the_end_once(ends_31_march, person, time_machine, queued):
    time_machine.move_to(datetime(2027, 3, 23, 12, 0, tzinfo=PARIS))  # 8 days and 12 hours
    assert expiry_reminders_notify() == 0
    time_machine.move_to(datetime(2027, 3, 24, 9, 0, tzinfo=PARIS))  # 7 days and 15 hours

    assert tasks.send_expiry_reminders() == 1
    assert tasks.send_expiry_reminders() == 0
    time_machine.move_to(datetime(2027, 3, 24, 18, 0, tzinfo=PARIS))
    assert expiry_reminders_notify() == 0

    told = reminders(person)
    assert set(told) == {Channel.EMAIL, Channel.SMS}
    assert "31 mars 2027" in told[Channel.SMS].body
    assert "50,00 €" in told[Channel.SMS].body
    assert ends_31_march.program.name in told[Channel.EMAIL].subject
    assert told[Channel.EMAIL].funder == ends_31_march.program.funder
    assert told[Channel.EMAIL].dedupe_key == f"expiry_reminder:{ends_31_march.pocket.pk}:email"


def test_no_reminder_at_night(ends_31_march, person, time_machine):
    time_machine.move_to(datetime(2027, 3, 24, 3, 0, tzinfo=PARIS))  # in the window, at night

    assert expiry_reminders_notify() == 0
    assert reminders(person) == {}


def test_no_reminder_less_than_7_days_before(funder, person, time_machine, queued):
    time_machine.move_to(datetime(2027, 3, 25, 10, 0, tzinfo=PARIS))
    grant(
        funder,
        person,
        valid_from=datetime(2027, 3, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, 9, 0, tzinfo=PARIS),  # 6 days and 23 hours
    )

    assert expiry_reminders_notify() == 0


def test_no_reminder_for_an_aid_spent_or_revoked(
    ends_31_march, funder, person, card, merchant, time_machine, queued
):
    revoked = grant(
        funder,
        person,
        valid_from=datetime(2027, 3, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )
    allocation_revoke(allocation=revoked, reason="error")
    pay(merchant, card, 5_000, capture=True)  # the first aid spent in full
    time_machine.move_to(datetime(2027, 3, 24, 10, 0, tzinfo=PARIS))

    assert expiry_reminders_notify() == 0


def test_each_of_two_aids_ending_the_same_day_is_reminded(
    ends_31_march, funder, person, time_machine, queued
):
    other = grant(
        funder,
        person,
        valid_from=datetime(2027, 3, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )
    time_machine.move_to(datetime(2027, 3, 24, 10, 0, tzinfo=PARIS))

    assert expiry_reminders_notify() == 2
    keys = set(Notification.objects.filter(kind=Kind.EXPIRY_REMINDER).values_list("dedupe_key"))
    assert (f"expiry_reminder:{other.pocket.pk}:sms",) in keys
    assert (f"expiry_reminder:{ends_31_march.pocket.pk}:sms",) in keys


def test_the_reminder_in_english(funder, time_machine, queued):
    sam = BeneficiaryFactory(first_name="Sam", preferred_language="en", phone=PHONE)
    time_machine.move_to(datetime(2027, 3, 24, 10, 0, tzinfo=PARIS))
    grant(
        funder,
        sam,
        valid_from=timezone.now() - timedelta(days=10),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )

    expiry_reminders_notify()

    sms = reminders(sam)[Channel.SMS]
    assert "March 31, 2027" in sms.body
    assert "€50.00" in sms.body
