"""bench.drains' trial: it drains the notices it made, counts the drain's statements, and leaves
the database as it found it, so that every trial finds the same work."""

import pytest

from bench.drains import trial
from merchants.payments import payment_authorize
from notifications import services
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program
from wallet.models import DecisionNotice
from wallet.models.notifications import Notification


@pytest.mark.django_db
def test_a_trial_drains_the_notices_it_made_then_rolls_them_back(funder, merchant):
    person = BeneficiaryFactory(email="", phone="")
    make_allocation(program=make_program(funder=funder), beneficiary=person, amount=5_000)
    decision = payment_authorize(
        merchant=merchant,
        amount=1_000,
        currency="EUR",
        payment_code=make_payment_code(person.wallet),
        idempotency_key="k",
    )
    DecisionNotice.objects.all().delete()

    def remake():
        DecisionNotice.objects.create(decision=decision)

    first = trial(remake, services.decision_notices_drain)
    second = trial(remake, services.decision_notices_drain)

    assert first.told == second.told == 1
    assert first.statements == second.statements > 0
    assert first.processor > 0 and first.wall > 0
    assert not DecisionNotice.objects.exists()
    assert (
        not Notification.objects.filter(beneficiary=person)
        .exclude(kind="allocation_granted")
        .exists()
    )
