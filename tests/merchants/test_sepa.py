"""Merchants' bank details, checked at onboarding, and the SEPA credit transfer file (pain.001)
that pays them: it parses, validates against the schema, and its amounts are the ledger's."""

import os
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sepaxml
import time_machine
import xmlschema
from django.core.exceptions import ValidationError

from core.errors import InvalidState
from ledger.verify import verify
from merchants.models import Merchant
from merchants.models.settlement import Payout, SepaFile
from merchants.payments import payment_authorize
from merchants.sepa import validate_iban
from merchants.settlement import sepa_file_build, settlement_close, settlement_until
from tests.api_clients import IdempotentClient
from tests.factories import make_merchant, make_payment_code, siret

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
SCHEMA = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.03.xsd")


@pytest.fixture(autouse=True)
def debtor(settings):
    settings.SEPA_DEBTOR_NAME = "Opérateur Aidwallet SAS"
    settings.SEPA_DEBTOR_IBAN = "FR76 3000 1007 9412 3456 7890 185"
    settings.SEPA_DEBTOR_BIC = "BDFEFRPP"


@pytest.fixture
def wallet(pocket):
    return pocket.wallet


@pytest.fixture
def paid_merchants(wallet):
    """Two merchants with bank details, each with a day of captures settled: their payouts."""
    day0 = settlement_until() + timedelta(days=1)
    shops = [
        make_merchant(iban="FR14 2004 1010 0505 0001 3M02 606", bic="PSSTFRPP"),
        make_merchant(iban="DE89370400440532013000", trade_name="Bäckerei Müller & Söhne"),
    ]
    for shop, amounts in zip(shops, [(1_234, 999), (6_543,)], strict=True):
        for hour, amount in enumerate(amounts, start=9):
            with time_machine.travel(day0 + timedelta(hours=hour), tick=False):
                decision = payment_authorize(
                    merchant=shop,
                    amount=amount,
                    currency="EUR",
                    payment_code=make_payment_code(wallet),
                    capture=True,
                )
            assert decision.approved_amount == amount
    return [
        settlement_close(merchant=shop, currency="EUR", until=day0 + timedelta(days=1)).payout
        for shop in shops
    ]


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def test_the_sepa_file_parses_validates_and_pays_what_the_ledger_moved(paid_merchants):
    # when a file is built for both payouts
    sepa_file = sepa_file_build(payouts=paid_merchants, execution_date=date(2027, 1, 4))

    # then it parses, and validates against the pain.001.001.03 schema
    xmlschema.XMLSchema(SCHEMA).validate(sepa_file.content)
    root = ET.fromstring(sepa_file.content.encode())
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:MsgId", namespaces=NS) == sepa_file.message_id

    # and each transfer pays the ledger's payout amount to the merchant's IBAN, identified by
    # the batch reference
    sent = {
        tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS): (
            cents(tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)),
            tx.find("p:Amt/p:InstdAmt", NS).get("Ccy"),
            tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
        )
        for tx in root.iterfind(".//p:CdtTrfTxInf", NS)
    }
    expected = {
        payout.batch.reference: (
            payout.transfer.entries.get(amount__gt=0).amount,
            "EUR",
            payout.batch.merchant.iban,
        )
        for payout in paid_merchants
    }
    assert sent == expected
    assert (
        cents(header.findtext("p:CtrlSum", namespaces=NS)) == sepa_file.total == 1_234 + 999 + 6_543
    )
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "2" and sepa_file.count == 2
    debtor = root.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS)
    assert debtor == "FR7630001007941234567890185"

    # and the payouts are sent, in this file
    for payout in Payout.objects.all():
        assert (payout.status, payout.sepa_file) == (Payout.Status.SENT, sepa_file)
    assert verify() == []


def test_a_payout_goes_in_one_sepa_file_only(paid_merchants):
    sepa_file_build(payouts=paid_merchants)

    with pytest.raises(InvalidState):
        sepa_file_build(payouts=paid_merchants[:1])
    assert SepaFile.objects.count() == 1


def test_a_merchant_without_iban_stops_the_file(paid_merchants):
    Merchant.objects.filter(pk=paid_merchants[1].batch.merchant_id).update(iban="")

    with pytest.raises(InvalidState):
        sepa_file_build(payouts=paid_merchants)
    assert not SepaFile.objects.exists()
    assert set(Payout.objects.values_list("status", flat=True)) == {Payout.Status.PENDING}


def test_no_sepa_file_without_the_operators_account(paid_merchants, settings):
    settings.SEPA_DEBTOR_IBAN = ""

    with pytest.raises(InvalidState):
        sepa_file_build(payouts=paid_merchants)


# --- bank details at onboarding ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("iban", "code"),
    [
        ("FR76 3000 6000 0112 3456 7890 188", "invalid_iban"),  # wrong check digits
        ("FR76300060000112345", "invalid_iban"),  # too short
        ("XX7630006000011234567890189", "invalid_iban"),
        ("SA0380000000608010167519", "iban_outside_sepa"),
    ],
)
def test_bad_ibans_are_refused(iban, code):
    with pytest.raises(ValidationError) as refused:
        validate_iban(iban)
    assert refused.value.code == code


def test_an_iban_typed_with_spaces_is_kept_compact(db):
    merchant = make_merchant(iban="fr76 3000 6000 0112 3456 7890 189", bic="agrifrpp")
    assert (merchant.iban, merchant.bic) == ("FR7630006000011234567890189", "AGRIFRPP")


def application(**bank):
    return {
        "siret": siret(90_001),
        "legal_name": "Épicerie du Vieux Temple SAS",
        "trade_name": "Épicerie du Vieux Temple",
        "mcc": "5411",
        "address": "4 rue du Vieux Temple",
        "postcode": "38000",
        "city": "Grenoble",
        **bank,
    }


@pytest.mark.parametrize(
    ("bank", "field"),
    [
        ({"iban": "FR76 3000 6000 0112 3456 7890 188"}, "iban"),
        ({"iban": "FR7630006000011234567890189", "bic": "AGRI"}, "bic"),
        ({"iban": "FR7630006000011234567890189", "bic": "AGRIXXPP"}, "bic"),
        ({"stripe_account_id": "acct_"}, "stripe_account_id"),
    ],
)
def test_the_application_api_refuses_bad_bank_details_with_a_clear_400(db, bank, field):
    response = IdempotentClient().post(
        "/api/merchant/v1/applications", application(**bank), format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == field
    assert not Merchant.objects.exists()


def test_the_application_api_takes_good_bank_details(db):
    body = application(iban="FR76 3000 6000 0112 3456 7890 189", bic="AGRIFRPP")

    response = IdempotentClient().post("/api/merchant/v1/applications", body, format="json")

    assert response.status_code == 201, response.content
    assert Merchant.objects.get().iban == "FR7630006000011234567890189"


def test_the_admin_form_refuses_a_bad_iban(admin_client, db):
    merchant = make_merchant()
    url = f"/admin/merchants/merchant/{merchant.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"iban": "FR76 3000 6000 0112 3456 7890 188", **_empty_inline()})

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "iban" in response.context["adminform"].form.errors
    merchant.refresh_from_db()
    assert merchant.iban == ""


def _empty_inline() -> dict:
    prefix = "api_keys"
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
