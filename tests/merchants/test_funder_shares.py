"""Each euro attributed to its funder, through HTTP: a basket paid by two aids of two funders
shows both shares on the merchant's statement, and each funder's export shows its share and
only its share."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from funders.models import Membership
from merchants.settlement import settlement_close, settlement_until
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
    make_staff,
)
from tests.funders.conftest import client_for, export_downloaded
from tests.merchant_api.conftest import MerchantClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def split_payment(merchant):
    """A 50.00 basket: 30.00 of food paid by the département's food aid, 8.00 of hygiene by the
    town's hygiene aid, 12.00 of tobacco left to pay another way; captured, then settled."""
    beneficiary = BeneficiaryFactory()
    departement = FunderFactory(name="Département de l'Isère")
    town = FunderFactory(name="CCAS de Grenoble")
    food = make_program(
        funder=departement, name="Aide alimentaire", rules={"products": {"allow": ["food"]}}
    )
    hygiene = make_program(
        funder=town, name="Aide hygiène", rules={"products": {"allow": ["hygiene"]}}
    )
    make_allocation(program=food, beneficiary=beneficiary, amount=10_000)
    make_allocation(program=hygiene, beneficiary=beneficiary, amount=10_000)
    day = settlement_until() + timedelta(days=1)
    with time_machine.travel(day + timedelta(hours=10), tick=False):
        response = MerchantClient(merchant).send(
            "/authorizations",
            {
                "amount": 5000,
                "currency": "EUR",
                "payment_code": make_payment_code(beneficiary.wallet),
                "partial_approval_allowed": True,
                "capture": True,
                "lines": [
                    {"amount": 3000, "category": "food"},
                    {"amount": 800, "category": "hygiene"},
                    {"amount": 1200, "category": "tobacco"},
                ],
            },
        )
    assert response.status_code == 201, response.content
    batch = settlement_close(merchant=merchant, currency="EUR", until=day + timedelta(days=1))
    return response.json(), batch, (departement, food), (town, hygiene)


def test_the_answer_names_both_funders_shares(split_payment):
    body = split_payment[0]
    assert body["amount_captured"] == 3800
    assert {(s["funder"], s["amount"]) for s in body["basket"]["shares"]} == {
        ("Département de l'Isère", 3000),
        ("CCAS de Grenoble", 800),
    }


def test_the_merchants_statement_shows_both_shares(merchant, split_payment):
    body, batch, *_ = split_payment
    response = MerchantClient(merchant).read(f"/settlements/{batch.reference}/statement.csv")
    table = list(csv.reader(io.StringIO(response.content.decode()), delimiter=";"))
    payments = sorted((row[6], row[4]) for row in table[1:] if row[1] == "payment")
    assert payments == [("CCAS de Grenoble", "800"), ("Département de l'Isère", "3000")]
    assert all(row[2] == body["id"] for row in table[1:] if row[1] == "payment")


@pytest.mark.parametrize(("ours", "theirs"), [(2, 3), (3, 2)])
def test_each_funder_export_shows_its_share_and_only_its_share(split_payment, ours, theirs):
    body = split_payment[0]
    funder, program = split_payment[ours]
    other_funder, other_program = split_payment[theirs]
    own_share = {"Aide alimentaire": "30.00", "Aide hygiène": "8.00"}[program.name]
    client = client_for(make_staff(funder=funder, role=Membership.Role.AGENT))
    today = timezone.localdate()
    period = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=5))}
    response, content = export_downloaded(client, program, "payments", "csv", period)
    assert response.status_code == 200
    text = content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    header, row = table[0], table[1]
    assert len(table) == 2
    assert row[header.index(header[0])] == body["id"]
    approved = [value for name, value in zip(header, row, strict=True) if "(" not in name]
    assert own_share in approved
    assert "38.00" not in row  # the payment's total approved, both funders together
    assert other_program.name not in text and other_funder.name not in text
    # And the other funder cannot open this program's export at all.
    stranger = client_for(make_staff(funder=other_funder, role=Membership.Role.AGENT))
    refused, _content = export_downloaded(stranger, program, "payments", "csv", period)
    assert refused.status_code in (403, 404)
