"""Closing a program: grants stop, the aid runs to its end, the float is paid back to the
funder by SEPA credit transfer, and the closing statement balances against the ledger."""

import html
import os
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
import xmlschema
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.errors import InvalidState
from funders.closing import (
    FunderIbanMissing,
    ProgramAlreadyClosed,
    closing_statement,
    program_close,
    program_returns_due,
)
from funders.models import ProgramClosure
from funders.services import allocation_revoke, allocations_expire_due
from ledger.verify import verify
from merchants.payments import payment_authorize, payment_capture, payment_refund
from reconciliation.report import reconciliation_build
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.funders.conftest import client_for

pytestmark = pytest.mark.django_db

XSD = os.path.join(os.path.dirname(__file__), "..", "files", "sepa", "pain.001.001.03.xsd")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
IBAN = "FR7630006000011234567890189"


@pytest.fixture
def closable(funder, manager, settings):
    settings.SEPA_DEBTOR_NAME = "Aidwallet SAS"
    settings.SEPA_DEBTOR_IBAN = "FR1420041010050500013M02606"
    settings.SEPA_DEBTOR_BIC = ""
    funder.iban, funder.bic = IBAN, "AGRIFRPP"
    funder.save()
    program = make_program(funder=funder, funded=10_000)
    shop = make_merchant(trade_name="Épicerie du Drac")
    spender = BeneficiaryFactory()
    running = make_allocation(program=program, beneficiary=spender, amount=3_000, days=10)
    revoked = make_allocation(program=program, amount=2_000)
    decision = payment_authorize(
        merchant=shop, amount=1_000, currency="EUR", payment_code=make_payment_code(spender.wallet)
    )
    payment_capture(merchant=shop, decision=decision, idempotency_key="cap")
    payment_refund(merchant=shop, decision=decision, amount=300, idempotency_key="ref")
    allocation_revoke(allocation=revoked, reason="moved away")
    return program, running


def test_closing_stops_grants_waits_for_the_aid_then_pays_the_float_back(closable, manager):
    program, running = closable
    closure = program_close(program=program, by=manager)
    # Aid still runs: nothing is paid back yet.
    assert (closure.returned_at, closure.amount_returned) == (None, None)
    with pytest.raises(InvalidState):
        make_allocation(program=program)
    with pytest.raises(ProgramAlreadyClosed):
        program_close(program=program, by=manager)
    assert program_returns_due() == 0
    # The aid ends: its remainder returns to the program, then the float goes to the funder.
    with time_machine.travel(running.valid_until + timedelta(minutes=1)):
        allocations_expire_due()
        assert program_returns_due() == 1
    closure.refresh_from_db()
    # 100 funded - 10 spent + 3 refunded = 93 paid back.
    assert closure.amount_returned == 9_300
    assert closure.iban == IBAN
    program.float_account.refresh_from_db()
    assert program.float_account.balance == 0
    assert program_returns_due() == 0  # paid once

    statement = closing_statement(program=program)
    assert statement.balances
    assert (statement.funded, statement.granted, statement.returned) == (10_000, 5_000, 9_300)
    assert statement.spent_by_shop == {statement_shop(statement): 700}
    assert (statement.refunded, statement.expired, statement.revoked) == (300, 2_300, 2_000)
    assert statement.float_left == statement.pockets_left == 0

    report = reconciliation_build(as_of=running.valid_until + timedelta(days=1))
    assert report.failures == []
    [lines] = [line for line in report.programs if line.program == program.pk]
    assert lines.returned_to_funder == 9_300
    assert verify() == []


def statement_shop(statement) -> str:
    [name] = statement.spent_by_shop
    assert "Épicerie du Drac" in name
    return name


def test_a_tampered_statement_does_not_balance(closable, manager):
    program, _running = closable
    statement = closing_statement(program=program)
    assert statement.balances
    statement.funded += 1
    assert not statement.balances


def test_no_close_without_the_funders_iban(closable, manager, funder):
    program, _running = closable
    funder.iban = ""
    funder.save()
    with pytest.raises(FunderIbanMissing):
        program_close(program=program, by=manager)
    program.refresh_from_db()
    assert program.is_active
    assert not ProgramClosure.objects.exists()


def test_the_sepa_file_validates_against_the_schema_and_pays_the_funder(closable, manager):
    from backoffice.admin.closing import closure_sepa_file

    program, running = closable
    closure = program_close(program=program, by=manager)
    with time_machine.travel(running.valid_until + timedelta(minutes=1)):
        allocations_expire_due()
        program_returns_due()
    closure.refresh_from_db()
    content, message_id = closure_sepa_file(closure, execution_date=date(2027, 1, 4))
    xmlschema.XMLSchema(XSD).validate(content)
    root = ET.fromstring(content)
    [tx] = root.iterfind(".//p:CdtTrfTxInf", NS)
    amount = tx.find("p:Amt/p:InstdAmt", NS)
    assert Decimal(amount.text) * 100 == 9_300
    assert amount.get("Ccy") == "EUR"
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN
    assert root.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == message_id


def test_a_manager_closes_from_the_back_office_and_reads_the_statement(
    closable, manager, agent, other_manager
):
    program, _running = closable
    url = f"/admin/funders/program/{program.pk}/close/"
    assert client_for(agent).get(url).status_code == 403
    assert client_for(other_manager).get(url).status_code == 404
    client = client_for(manager)
    assert client.post(url, {}).status_code == 200  # not confirmed: nothing happens
    assert not ProgramClosure.objects.exists()
    done = client.post(url, {"confirm": "on"})
    assert done.status_code == 302
    page = client.get(done.url)
    with translation.override(page.headers["Content-Language"]):
        balanced = gettext("Balances to the cent against the ledger.")
        closed = gettext("This program is already closed.")
    assert balanced in html.unescape(page.content.decode())
    again = client.post(url, {"confirm": "on"})
    assert again.status_code == 200
    assert closed in html.unescape(again.content.decode())
    assert ProgramClosure.objects.count() == 1
    assert timezone.now()
