"""The drain tells the payments of people no channel reaches (no email, no mobile number, no app
subscribed) for its whole batch at once: the rows it writes are those decision_notify writes
for each, in a few statements for the batch instead of several a payment."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from merchants.payments import payment_authorize
from notifications.services import decision_notices_drain, decision_notify
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program
from wallet.models import Decision, DecisionNotice
from wallet.models.notifications import Notification, PushSubscription

pytestmark = pytest.mark.django_db

FIELDS = ["beneficiary_id", "funder_id", "kind", "channel", "status", "skip_reason"]
FIELDS += ["dedupe_key", "recipient", "subject", "body", "attempts", "next_attempt_at"]


def unreachable(**fields):
    return BeneficiaryFactory(email="", phone="", **fields)


def pay(person, merchant, amount):
    return payment_authorize(
        merchant=merchant,
        amount=amount,
        currency="EUR",
        payment_code=make_payment_code(person.wallet),
    )


PAYMENTS = [Notification.Kind.PAYMENT_APPROVED, Notification.Kind.PAYMENT_DECLINED]


def written() -> list[tuple]:
    return sorted(Notification.objects.filter(kind__in=PAYMENTS).values_list(*FIELDS), key=str)


def test_the_batch_writes_what_decision_notify_writes(funder, other_funder, merchant):
    one_funder, two_funders, in_savoie, with_app = (unreachable() for _ in range(4))
    food = make_program(funder=funder, name="Aide alimentaire")
    savoie = make_program(funder=other_funder, rules={"zone": {"departements": ["73"]}})
    make_allocation(program=food, beneficiary=one_funder, amount=5_000)
    make_allocation(program=food, beneficiary=two_funders, amount=1_000)
    make_allocation(program=make_program(funder=other_funder), beneficiary=two_funders)
    make_allocation(program=savoie, beneficiary=in_savoie)
    make_allocation(program=food, beneficiary=with_app)
    PushSubscription.objects.create(
        beneficiary=with_app, endpoint="https://push.example/1", p256dh="k", auth="a"
    )
    pay(one_funder, merchant, 2_000)  # approved, one funder
    pay(one_funder, merchant, 9_000)  # refused: not enough money
    pay(two_funders, merchant, 3_000)  # paid by two funders' aid
    refused = pay(in_savoie, merchant, 3_000)  # refused by the aid of Savoie, which it names
    pay(with_app, merchant, 1_000)  # reached by the app: told as anyone
    decisions = list(Decision.objects.order_by("pk"))
    assert refused.status == Decision.Status.DECLINED and refused.reason_pocket

    assert decision_notices_drain() == len(decisions)
    batch = written()
    Notification.objects.filter(kind__in=PAYMENTS).delete()
    for decision in decisions:
        decision_notify(decision=decision)

    assert batch == written()
    assert {row[1] for row in batch} == {funder.pk, other_funder.pk, None}
    assert not DecisionNotice.objects.exists()


def test_the_drain_tells_a_batch_of_unreachable_people_in_a_few_statements(funder, merchant):
    program = make_program(funder=funder)
    for _ in range(20):
        person = unreachable()
        make_allocation(program=program, beneficiary=person)
        pay(person, merchant, 500)

    with CaptureQueriesContext(connection) as sent:
        assert decision_notices_drain() == 20

    assert len(sent.captured_queries) <= 12, [q["sql"][:80] for q in sent.captured_queries]
    assert Notification.objects.filter(kind__in=PAYMENTS).count() == 20
