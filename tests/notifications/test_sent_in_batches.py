"""The messages leave in batches: one task for the messages the drain's batch writes after its
commit (not a task each), one for an event's channels, and one per SEND_BATCH for the loops that
write many (a campaign's grants, grants made together, the expiry reminders, non-use), sent one
after the other on one email connection and one SMS client, each message's failure its own and
tried again on its own as before."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.utils import timezone

from funders.campaigns import campaign_create, campaign_run, proposal_accept_many
from funders.models import Campaign, CampaignRun, EligibilityCriterion, Proposal
from funders.nonuse import nonuse_detect
from funders.services import allocation_grant_many, beneficiary_enrol
from merchants.payments import payment_authorize
from notifications import services, tasks
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program
from wallet.models import Aidant
from wallet.models.notifications import Notification

pytestmark = pytest.mark.django_db

Channel = Notification.Channel
Status = Notification.Status
PARIS = ZoneInfo("Europe/Paris")
PAYMENTS = [Notification.Kind.PAYMENT_APPROVED, Notification.Kind.PAYMENT_DECLINED]


class CountingEmailBackend(LocmemEmailBackend):
    """Django's test outbox, counting the connections opened."""

    opened = 0

    def open(self):
        CountingEmailBackend.opened += 1
        return super().open()


class FlakySMSBackend:
    """Fails for the numbers in `refused`; counts the clients made and closed."""

    refused: set[str] = set()
    sent: list[str] = []
    made = 0
    closed = 0

    def __init__(self):
        FlakySMSBackend.made += 1

    def close(self):
        FlakySMSBackend.closed += 1

    def send(self, phone: str, text: str, sender: str | None = None) -> str:
        if phone in FlakySMSBackend.refused:
            raise ConnectionError(f"provider refused {phone}")
        FlakySMSBackend.sent.append(phone)
        return f"id-{phone}"


@pytest.fixture(autouse=True)
def backends(settings):
    settings.EMAIL_BACKEND = f"{__name__}.CountingEmailBackend"
    settings.SMS_BACKEND = f"{__name__}.FlakySMSBackend"
    CountingEmailBackend.opened = 0
    FlakySMSBackend.refused, FlakySMSBackend.sent = set(), []
    FlakySMSBackend.made = FlakySMSBackend.closed = 0


@pytest.fixture
def handed(monkeypatch):
    """What the drain hands the workers: (task, argument) in order."""
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(tasks.send_notification, "delay", lambda i: calls.append(("one", i)))
    monkeypatch.setattr(tasks.send_notifications, "delay", lambda ids: calls.append(("batch", ids)))
    return calls


def people_paying(funder, merchant, count: int) -> list:
    """`count` people with an email and a mobile number, each refused a payment (more than
    their aid): told on both (a payment accepted is not sent by SMS by default)."""
    program = make_program(funder=funder)
    people = []
    for number in range(count):
        person = BeneficiaryFactory(
            email=f"person{number}@example.org", phone=f"+3361234560{number}"
        )
        make_allocation(program=program, beneficiary=person, amount=5_000)
        payment_authorize(
            merchant=merchant,
            amount=9_000,
            currency="EUR",
            payment_code=make_payment_code(person.wallet),
        )
        people.append(person)
    return people


def payment_messages():
    return Notification.objects.filter(kind__in=PAYMENTS).order_by("pk")


def test_the_drain_hands_its_messages_over_in_one_task_after_its_commit(
    funder, merchant, handed, monkeypatch, django_capture_on_commit_callbacks
):
    people_paying(funder, merchant, 3)
    handed.clear()  # the grants' messages, queued as before
    told = services.decision_notify
    broken = people_paying(funder, merchant, 1)[0]
    handed.clear()

    def notify(*, decision):
        rows = told(decision=decision)
        if decision.wallet.beneficiary_id == broken.pk:
            raise RuntimeError("template missing")  # its rows roll back with its savepoint
        return rows

    monkeypatch.setattr(services, "decision_notify", notify)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.decision_notices_drain() == 3
    messages = list(payment_messages().values_list("pk", "channel"))
    assert sorted(channel for _, channel in messages) == [Channel.EMAIL] * 3 + [Channel.SMS] * 3
    assert handed == [("batch", [pk for pk, _ in messages])]


def test_the_batch_is_split_into_tasks_of_send_batch_messages(
    funder, merchant, handed, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "SEND_BATCH", 4)
    people_paying(funder, merchant, 3)
    handed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.decision_notices_drain() == 3
    ids = list(payment_messages().values_list("pk", flat=True))
    assert handed == [("batch", ids[:4]), ("batch", ids[4:])]


def test_a_batch_shares_its_connections_and_a_failure_is_its_messages_alone(
    funder, merchant, monkeypatch, django_capture_on_commit_callbacks
):
    people = people_paying(funder, merchant, 3)
    with django_capture_on_commit_callbacks(execute=False):
        services.decision_notices_drain()
    ids = list(payment_messages().values_list("pk", flat=True))
    FlakySMSBackend.refused = {people[1].phone.as_e164}
    mail.outbox.clear()
    CountingEmailBackend.opened = 0
    retried: list[tuple] = []
    monkeypatch.setattr(
        tasks.send_notification,
        "apply_async",
        lambda args, countdown: retried.append((args, countdown)),
    )

    assert tasks.send_notifications(ids) == 5

    assert CountingEmailBackend.opened == 1
    assert len(mail.outbox) == 3
    # The client that failed is dropped: the next message gets a new one.
    assert (FlakySMSBackend.made, FlakySMSBackend.closed) == (2, 2)
    assert FlakySMSBackend.sent == [people[0].phone.as_e164, people[2].phone.as_e164]
    failed = Notification.objects.get(status=Status.FAILED)
    assert (failed.channel, failed.recipient) == (Channel.SMS, people[1].phone.as_e164)
    assert failed.attempts == 1 and "provider refused" in failed.error
    assert failed.next_attempt_at is not None
    # Tried again on its own when its backoff says, as send_notification's own retry does.
    assert len(retried) == 1 and retried[0][0] == (failed.pk,)
    assert retried[0][1] == pytest.approx(services.RETRY_DELAYS[0].total_seconds(), abs=5)
    sent = Notification.objects.filter(status=Status.SENT, kind__in=PAYMENTS)
    assert sent.count() == 5
    assert set(sent.filter(channel=Channel.SMS).values_list("provider_message_id", flat=True)) == {
        f"id-{people[0].phone.as_e164}",
        f"id-{people[2].phone.as_e164}",
    }

    # A second run (a duplicate task) sends nothing twice.
    assert tasks.send_notifications(ids) == 5
    assert len(mail.outbox) == 3 and len(FlakySMSBackend.sent) == 2


def test_the_sweep_queues_lost_messages_in_batches(funder, merchant, handed, time_machine):
    people_paying(funder, merchant, 2)
    handed.clear()
    time_machine.move_to(timezone.now() + services.REQUEUE_GRACE * 2)
    due = services.notification_due_ids()
    assert due  # the grants' messages, whose tasks never ran here
    assert tasks.send_due_notifications() == len(due)
    assert handed == [("batch", due)]


# The other writers of messages: a grant, a campaign's grants, the expiry reminders, non-use.


def reachable(count: int) -> list:
    return [
        BeneficiaryFactory(email=f"reached{n}@example.org", phone=f"+3361234570{n}")
        for n in range(count)
    ]


def messages_of(kind: str) -> list[int]:
    return list(Notification.objects.filter(kind=kind).order_by("pk").values_list("pk", flat=True))


def three_proposed(funder, **program) -> Campaign:
    """A campaign of 5,000 cents run for three enrolled people the platform can reach."""
    program = make_program(funder=funder, **program)
    EligibilityCriterion.objects.create(program=program, kind="departement", values=["38"])
    campaign = campaign_create(program=program, name="Hiver", amount=5_000)
    for person in reachable(3):
        beneficiary_enrol(funder=funder, beneficiary=person)
    campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND)
    return campaign


def test_one_grant_hands_its_email_and_sms_over_in_one_task(
    funder, handed, django_capture_on_commit_callbacks
):
    person = reachable(1)[0]
    with django_capture_on_commit_callbacks(execute=True):
        make_allocation(program=make_program(funder=funder), beneficiary=person)
    granted = messages_of(Notification.Kind.ALLOCATION_GRANTED)
    assert len(granted) == 2
    assert handed == [("batch", granted)]


def test_a_campaigns_grants_leave_in_batches_as_each_one_commits(
    funder, handed, monkeypatch, django_capture_on_commit_callbacks
):
    """proposal_accept_many grants each proposal in a transaction of its own: their messages
    are handed over SEND_BATCH at a time as those commit, the rest at the end, not a task
    each."""
    monkeypatch.setattr(services, "SEND_BATCH", 4)
    campaign = three_proposed(funder)
    with django_capture_on_commit_callbacks(execute=True):
        result = proposal_accept_many(proposals=Proposal.objects.filter(campaign=campaign), by=None)
    assert len(result.accepted) == 3
    granted = messages_of(Notification.Kind.ALLOCATION_GRANTED)
    assert len(granted) == 6
    assert handed == [("batch", granted[:4]), ("batch", granted[4:])]


def test_a_failed_grant_hands_nothing_and_the_others_still_leave(
    funder, handed, django_capture_on_commit_callbacks
):
    """A grant refused (the program's money ran out) rolls back with its messages: the ones
    granted before it are handed over, and only those."""
    campaign = three_proposed(funder, funded=10_000)
    with django_capture_on_commit_callbacks(execute=True):
        result = proposal_accept_many(proposals=Proposal.objects.filter(campaign=campaign), by=None)
    assert (len(result.accepted), result.left) == (2, 1)
    granted = messages_of(Notification.Kind.ALLOCATION_GRANTED)
    assert len(granted) == 4
    assert handed == [("batch", granted)]


def test_grants_made_together_hand_their_messages_over_together(
    funder, handed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        allocation_grant_many(
            program=make_program(funder=funder),
            beneficiaries=reachable(3),
            amount=1_000,
            valid_from=timezone.now(),
            valid_until=None,
            key_prefix="together",
        )
    granted = messages_of(Notification.Kind.ALLOCATION_GRANTED)
    assert len(granted) == 6
    assert handed == [("batch", granted)]


def test_the_expiry_reminders_leave_in_batches(
    funder, handed, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(datetime(2027, 3, 1, 12, 0, tzinfo=PARIS), tick=False)
    program = make_program(funder=funder)
    for person in reachable(3):
        make_allocation(
            program=program,
            beneficiary=person,
            valid_from=datetime(2027, 3, 1, tzinfo=PARIS),
            valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
        )
    handed.clear()
    time_machine.move_to(datetime(2027, 3, 24, 9, 0, tzinfo=PARIS))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.expiry_reminders_notify() == 3
    reminded = messages_of(Notification.Kind.EXPIRY_REMINDER)
    assert len(reminded) == 6
    assert handed == [("batch", reminded)]


def test_non_use_tells_everyone_found_and_their_aidants_in_batches(
    funder, handed, time_machine, django_capture_on_commit_callbacks
):
    start = datetime(2026, 10, 1, 10, tzinfo=PARIS)
    time_machine.move_to(start, tick=False)
    program = make_program(funder=funder)
    program.nonuse_idle_days = 14
    program.save()
    people = reachable(2)
    for person in people:
        make_allocation(program=program, beneficiary=person, valid_from=start, days=90)
    Aidant.objects.create(
        wallet=people[0].wallet, name="CCAS", contact="aidant@example.org", channel="email"
    )
    handed.clear()
    time_machine.move_to(start + timedelta(days=14), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert nonuse_detect(now=timezone.now()) == 2
    told = list(
        Notification.objects.filter(
            kind__in=[Notification.Kind.NON_USE, Notification.Kind.NON_USE_AIDANT]
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert len(told) == 5  # each person's email and SMS, and the aidant's email
    assert handed == [("batch", told)]
