"""The operator's reconciliation on a built scenario (two programs, two merchants, payments,
refunds, card captures, a revocation, an expiry, payouts): every figure exact, every identity
holding; then corruptions planted behind the services' back, each named by the command, which
exits 1."""

import logging
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone, translation
from django.utils.translation import gettext

from funders.services import (
    allocation_expire,
    allocation_revoke,
    external_funding_account,
    program_fund,
)
from ledger.models import Account, Transfer
from ledger.services import account_get_or_create, transfer_post
from ledger.verify import verify
from merchants.payments import payment_authorize, payment_capture, payment_refund
from reconciliation.report import reconciliation_build
from reconciliation.tasks import reconcile_ledger
from stripe_issuing.transactions import transaction_event_apply
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.markers import ON_POSTGRESQL
from tests.stripe_issuing import stripe_events as se
from wallet.models import Card

pytestmark = pytest.mark.django_db

# The card network's line, under its label in the active language.
CARD_NETWORK = gettext("card network")


def payout_account() -> Account:
    return account_get_or_create(
        code="payout:test:EUR",
        name="Payouts",
        kind=Account.Kind.PAYOUT,
        currency="EUR",
        guarded=False,
    )


def payout(merchant, amount: int) -> Transfer:
    """A payout as the settlement batches make them (see the contract in issue 8)."""
    return transfer_post(
        kind=Transfer.Kind.PAYOUT,
        currency="EUR",
        legs=[(merchant.payable_account, -amount), (payout_account(), amount)],
        idempotency_key=None,
        metadata={"merchant": merchant.pk, "batch": 0},
    )


def with_card(beneficiary) -> Card:
    return Card.objects.create(
        wallet=beneficiary.wallet,
        kind="virtual",
        status="active",
        last4="4242",
        stripe_card_id=f"ic_1Test{beneficiary.pk:08d}",
    )


def pay(merchant, card: Card, amount: int, **fields):
    return payment_authorize(
        merchant=merchant,
        amount=amount,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        **fields,
    )


def card_capture(card: Card, amount: int) -> None:
    """A capture the card network tells us of, with no authorization of ours (a force
    capture): paid by the pockets that accept the shop, the rest by the program's receivable."""
    txn = se.transaction(
        card=card.stripe_card_id, type="capture", amount=amount, authorization=None
    )
    transaction_event_apply(event=se.event("issuing_transaction.created", txn))


@pytest.fixture
def scenario():
    # given two programs of one currency, five grants and two shops
    a = make_program(funded=100_000)
    program_fund(program=a, amount=20_000, idempotency_key="top-up")
    b = make_program(funded=50_000)
    ann, bob, cid, dan, eve, fay = (BeneficiaryFactory() for _ in range(6))
    a1 = make_allocation(program=a, beneficiary=ann, amount=30_000)
    make_allocation(program=a, beneficiary=bob, amount=20_000)
    a3 = make_allocation(program=a, beneficiary=cid, amount=10_000)
    a4 = make_allocation(
        program=a,
        beneficiary=dan,
        amount=5_000,
        valid_from=timezone.now() - timedelta(days=10),
        days=5,
    )
    make_allocation(program=b, beneficiary=eve, amount=15_000)
    make_allocation(program=b, beneficiary=fay, amount=2_000)
    m1, m2 = make_merchant(), make_merchant()
    before_payments = timezone.now()

    # when people pay, shops capture and refund, aid ends and shops are paid out
    ann_card, bob_card, cid_card, eve_card, fay_card = map(with_card, (ann, bob, cid, eve, fay))
    paid = pay(m1, ann_card, 4_000, capture=True)
    payment_refund(merchant=m1, decision=paid, amount=1_500, idempotency_key="r1")
    partly = pay(m2, ann_card, 6_000)
    payment_capture(merchant=m2, decision=partly, amount=5_000, idempotency_key="c1")
    pay(m2, bob_card, 2_000)  # left held
    cids = pay(m2, cid_card, 2_500, capture=True)
    allocation_revoke(allocation=a3, reason="moved away")
    payment_refund(merchant=m2, decision=cids, amount=500, idempotency_key="r2")
    allocation_expire(allocation=a4)
    pay(m1, eve_card, 3_000, capture=True)
    card_capture(ann_card, 1_000)
    card_capture(fay_card, 3_000)  # 2,000 from her pocket, 1,000 beyond it
    payout(m1, 2_000)
    payout(m2, 7_000)
    return SimpleNamespace(
        a=a, b=b, a1=a1, m1=m1, m2=m2, before_payments=before_payments, bob_card=bob_card
    )


def lines_of(report, program):
    return next(lines for lines in report.programs if lines.program == program.pk)


def payees_of(report):
    return {payee.label: payee for payee in report.payees}


def test_each_figure_of_a_program_is_exact(scenario):
    report = reconciliation_build()
    card = payees_of(report)[CARD_NETWORK].account

    a = lines_of(report, scenario.a)
    assert (a.funded, a.allocated) == (120_000, 65_000)
    assert a.spent_by_payee == {
        scenario.m1.payable_account_id: 4_000 - 1_500,
        scenario.m2.payable_account_id: 5_000 + 2_500 - 500,
        card: 1_000,
    }
    assert a.spent == 10_500
    assert a.held == 2_000
    assert (a.expired_returned, a.revoked_returned, a.refunded_to_float) == (5_000, 7_500, 500)
    # ann: 30,000 - 4,000 + 1,500 - 5,000 - 1,000; bob: 20,000 of which 2,000 held
    assert a.in_pockets == 21_500 + 18_000
    assert a.not_yet_returned == 0
    assert a.float_available == 120_000 - 65_000 + 5_000 + 7_500 + 500
    assert (a.float_held, a.receivable) == (0, 0)


def test_card_payments_beyond_the_pockets_are_the_programs_receivable(scenario):
    report = reconciliation_build()
    card = payees_of(report)[CARD_NETWORK].account

    b = lines_of(report, scenario.b)
    assert (b.funded, b.allocated) == (50_000, 17_000)
    assert b.spent_by_payee == {scenario.m1.payable_account_id: 3_000, card: 2_000 + 1_000}
    assert b.receivable == 1_000
    assert (b.in_pockets, b.held, b.float_available) == (12_000, 0, 33_000)


def test_each_merchant_is_spent_at_paid_out_and_in_transit(scenario):
    payees = payees_of(reconciliation_build())

    m1, m2 = payees[scenario.m1.trade_name], payees[scenario.m2.trade_name]
    assert (m1.spent, m1.paid_out, m1.in_transit) == (2_500 + 3_000, 2_000, 3_500)
    assert (m2.spent, m2.paid_out, m2.in_transit) == (7_000, 7_000, 0)
    card = payees[CARD_NETWORK]
    assert (card.spent, card.paid_out, card.in_transit) == (4_000, 0, 4_000)


def test_every_identity_holds_on_the_scenario(scenario):
    report = reconciliation_build()

    assert verify() == []
    assert report.failures == []
    codes = {(check.subject, check.code) for check in report.checks}
    assert (lines_of(report, scenario.a).subject, "money_in") in codes
    assert (f"EUR {scenario.m1.trade_name}", "paid_out_at_most_spent") in codes
    assert ("EUR", "whole_ledger") in codes
    total = report.program_total("EUR")
    assert total.funded == 170_000 == report.currencies[0].external_funding
    assert report.currencies[0].payout_accounts == 9_000


def test_figures_as_of_an_earlier_instant_leave_out_what_came_after(scenario):
    report = reconciliation_build(as_of=scenario.before_payments)

    a = lines_of(report, scenario.a)
    assert (a.funded, a.allocated, a.spent, a.held) == (120_000, 65_000, 0, 0)
    assert (a.expired_returned, a.revoked_returned) == (0, 0)
    # dan's aid was already past its end but not yet expired: still in its pocket
    assert a.in_pockets == 65_000
    assert report.payees == []
    assert report.failures == []


def test_a_hold_captured_later_was_held_in_between(scenario):
    before = timezone.now()
    held = pay(scenario.m1, scenario.bob_card, 1_000)
    between = timezone.now()
    payment_capture(merchant=scenario.m1, decision=held, idempotency_key="c2")

    assert lines_of(reconciliation_build(as_of=before), scenario.a).held == 2_000
    assert lines_of(reconciliation_build(as_of=between), scenario.a).held == 3_000
    now = reconciliation_build()
    assert lines_of(now, scenario.a).held == 2_000
    assert now.failures == []


def run_reconcile(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command("reconcile", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_each_program_and_the_totals(scenario):
    out, err = run_reconcile()

    assert err == ""
    assert f"program {scenario.a.pk} «{scenario.a.name}»" in out
    assert f"program {scenario.b.pk} «{scenario.b.name}»" in out
    assert "Total EUR" in out
    assert f"spent at {scenario.m2.trade_name}" in out
    assert "spent through the card network" in out
    assert "NOT BALANCED" not in out
    assert "every line balances" in out


def test_the_command_shows_one_program_as_of_a_day(scenario):
    out, _ = run_reconcile("--program", str(scenario.b.pk), "--until", "2000-01-01")

    assert f"program {scenario.b.pk}" in out
    assert f"program {scenario.a.pk}" not in out
    assert "Total" not in out


def test_the_command_refuses_an_unknown_program(scenario):
    with pytest.raises(CommandError):
        run_reconcile("--program", "0")


# Corruptions: writes that bypass the services (a bug, a manual SQL fix, a rogue batch). Each
# returns the subject and the line the report must name.


def pay_out_more_than_a_merchant_was_paid(s):
    payout(s.m1, 3_500 + 1)
    return f"EUR {s.m1.trade_name}: paid_out_at_most_spent"


def take_money_out_of_a_pocket_but_not_as_a_payment(s):
    transfer_post(
        kind=Transfer.Kind.PAYOUT,
        currency="EUR",
        legs=[(s.a1.pocket.account, -100), (payout_account(), 100)],
        idempotency_key=None,
    )
    return f"program {s.a.pk} «{s.a.name}»: money_in"


def credit_a_merchant_with_money_no_program_paid(s):
    transfer_post(
        kind=Transfer.Kind.CAPTURE,
        currency="EUR",
        legs=[(external_funding_account("EUR"), -250), (s.m2.payable_account, 250)],
        idempotency_key=None,
    )
    return f"EUR {s.m2.trade_name}: payee"


def allocate_to_another_programs_pocket(s):
    pocket = make_allocation(program=s.b, amount=1_000).pocket
    transfer_post(
        kind=Transfer.Kind.ALLOCATE,
        currency="EUR",
        legs=[(s.a.float_account, -700), (pocket.account, 700)],
        idempotency_key=None,
    )
    return f"program {s.b.pk} «{s.b.name}»: pockets"


CORRUPTIONS = [
    pay_out_more_than_a_merchant_was_paid,
    take_money_out_of_a_pocket_but_not_as_a_payment,
    credit_a_merchant_with_money_no_program_paid,
    allocate_to_another_programs_pocket,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda corrupt: corrupt.__name__)
def test_the_command_fails_and_names_the_line_that_does_not_balance(scenario, corrupt):
    # given a ledger that balances, then a write around the services
    run_reconcile()
    expected = corrupt(scenario)

    # when it is reconciled
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile", stdout=StringIO(), stderr=err)

    # then the program or merchant and the line are named
    assert any(line.startswith(f"NOT BALANCED {expected}") for line in err.getvalue().splitlines())


def test_a_failing_line_shows_both_sides_and_the_difference(scenario):
    pay_out_more_than_a_merchant_was_paid(scenario)

    (check,) = reconciliation_build().failures
    assert (check.left, check.right, check.difference) == (2_000 + 3_501, 5_500, 1)
    assert "(5501) <= spent by programs (5500), difference 1" in str(check)


def test_the_daily_task_logs_each_line_that_does_not_balance(scenario, caplog):
    assert reconcile_ledger() == 0
    take_money_out_of_a_pocket_but_not_as_a_payment(scenario)

    with caplog.at_level(logging.ERROR, logger="wallet.tasks"):
        failed = reconcile_ledger()

    assert failed >= 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == failed
    assert any(f"program {scenario.a.pk}" in message for message in errors)


def test_the_reconciliation_runs_daily():
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["reconciliation.tasks.reconcile_ledger"] == 86_400


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the SQLite test database is in memory")
@pytest.mark.django_db(transaction=True)
def test_manage_py_reconcile_exits_1_when_a_payout_exceeds_what_was_spent(allocation, merchant):
    card = with_card(allocation.beneficiary)
    pay(merchant, card, 1_000, capture=True)
    payout(merchant, 1_200)
    db = connection.settings_dict

    result = subprocess.run(
        [sys.executable, "manage.py", "reconcile"],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert f"NOT BALANCED EUR {merchant.trade_name}: paid_out_at_most_spent" in result.stderr
