"""The payments export written by COPY (backoffice/exports.py) takes what the program's pockets
approved, captured and refunded from the decision's holds, where the resource reads the
decision's split: the two files stay the same bytes when a payment is split across two pockets
of the program, reversed in part (which adds a hold for the rest), captured and refunded, and
when a third pocket of the program refuses it."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from backoffice import exports
from funders import reports
from merchants.payments import (
    payment_authorize,
    payment_capture,
    payment_refund,
    payment_reverse,
)
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from wallet.models import DecisionHold

pytestmark = pytest.mark.django_db


def rows(content: bytes) -> list[list[str]]:
    return [line.split(",") for line in content.decode("utf-8-sig").splitlines()[1:]]


@postgresql_only
@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_split_payment_reversed_in_part_exports_the_same_bytes_as_the_resource(language):
    # given two pockets of the program that pay at a grocer, and a third that pays for health only
    program = make_program()
    person = BeneficiaryFactory()
    for amount in (500, 1_000):
        make_allocation(program=program, beneficiary=person, amount=amount)
    make_allocation(
        program=program,
        beneficiary=person,
        amount=2_000,
        rules={"categories": {"allow_groups": ["health"]}},
    )
    grocer = make_merchant()
    # a payment of 12 € split across the two, reversed by 3 €, captured 7 €, refunded 2 €
    payment = payment_authorize(
        merchant=grocer,
        amount=1_200,
        currency="EUR",
        payment_code=make_payment_code(person.wallet),
    )
    assert payment.approved_amount == 1_200
    payment_reverse(merchant=grocer, decision=payment, idempotency_key="rev", amount=300)
    payment_capture(merchant=grocer, decision=payment, idempotency_key="cap", amount=700)
    payment_refund(merchant=grocer, decision=payment, amount=200, idempotency_key="ref")
    # the reversal left a decision hold beside the split's two
    assert DecisionHold.objects.filter(decision=payment).count() == 3
    today = timezone.localdate(timezone=reports.PARIS)
    period = reports.Period(start=today - timedelta(days=1), end=today)

    # when the export is written by COPY and by its resource
    with translation.override(language):
        from_copy = exports.program_export(
            program=program, kind="payments", file_format="csv", period=period
        )[2]
        dataset = exports.EXPORTS["payments"](program, period)
        from_resource = ("\ufeff" + exports.FORMATS["csv"].export_data(dataset)).encode()

    # then the same bytes: approved as split (12 €, not what the holds hold now), captured 7 €,
    # refunded 2 €, and the refusal of the health-only pocket named
    assert from_copy == from_resource
    [row] = rows(from_copy)
    assert row[6:13] == ["1200", "12.00", "1200", "7.00", "700", "2.00", "200"]
    assert row[-1] != ""
