from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from funders.models import Funding
from funders.services import external_funding_account
from ledger.models import Transfer
from ledger.services import hold_place, transfer_post
from stripe_issuing.accounts import card_settlement_account
from stripe_issuing.cards import CardsNotAvailable
from stripe_issuing.funding import card_settlement_reconcile, program_topup
from tests.factories import make_allocation, make_program

pytestmark = pytest.mark.django_db


def test_a_topup_is_sent_to_the_issuing_balance_and_recorded_as_funding(stripe_fake, program):
    program.float_account.refresh_from_db()
    float_before = program.float_account.balance

    funding = program_topup(program=program, amount=250_000, token="t1")

    [sent] = stripe_fake.sent("POST", r"/v1/topups")
    assert sent.form["amount"] == "250000"
    assert sent.form["currency"] == "eur"
    assert sent.form["destination_balance"] == "issuing"
    assert sent.headers["Idempotency-Key"] == f"topup:{program.pk}:t1"
    [topup] = stripe_fake.topups.values()
    assert (funding.method, funding.reference, funding.amount) == (
        Funding.Method.STRIPE_TOPUP,
        topup["id"],
        250_000,
    )
    program.float_account.refresh_from_db()
    assert program.float_account.balance == float_before + 250_000


def test_a_topup_submitted_twice_tops_up_once(stripe_fake, program):
    first = program_topup(program=program, amount=1_000, token="same")
    second = program_topup(program=program, amount=1_000, token="same")

    assert first.pk == second.pk
    assert len(stripe_fake.topups) == 1


def test_no_topup_without_a_key(stripe_fake, settings, program):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CardsNotAvailable) as error:
        program_topup(program=program, amount=1_000, token="t")

    assert error.value.code == "cards_not_available"
    assert stripe_fake.requests == []


# --- reconciliation ---------------------------------------------------------------------------


@pytest.fixture
def period():
    now = timezone.now()
    return now - timedelta(hours=1), now + timedelta(hours=1)


@pytest.fixture
def card_movements(db, stripe_fake):
    """A hold of 30 € (iauth_1) captured as ipi_1 for 25 €, and a refund of 5 € (ipi_2), in
    our ledger and at Stripe."""
    pocket = make_allocation(program=make_program(), amount=10_000).pocket
    settlement = card_settlement_account("EUR")
    outside = external_funding_account("EUR")
    hold_place(
        debit=pocket.account,
        credit=settlement,
        amount=3_000,
        idempotency_key="card:iauth_1",
        expires_at=timezone.now() + timedelta(days=7),
    )
    for key, amount in (("card-capture:ipi_1", 2_500), ("card-refund:ipi_2", -500)):
        transfer_post(
            kind=Transfer.Kind.CAPTURE if amount > 0 else Transfer.Kind.REFUND,
            currency="EUR",
            legs=[(outside, -amount), (settlement, amount)],
            idempotency_key=key,
        )
    now = int(timezone.now().timestamp())
    stripe_fake.add_balance_transaction(
        type="issuing_authorization_hold", amount=-3_000, source="iauth_1", created=now
    )
    stripe_fake.add_balance_transaction(
        type="issuing_transaction", amount=-2_500, source="ipi_1", created=now
    )
    stripe_fake.add_balance_transaction(
        type="issuing_transaction", amount=500, source="ipi_2", created=now
    )
    return stripe_fake


def test_reconciliation_passes_when_both_sides_agree(card_movements, period):
    report = card_settlement_reconcile(currency="EUR", since=period[0], until=period[1])

    posted, held = report.comparisons
    assert (posted.ledger_total, posted.stripe_total) == (2_000, 2_000)
    assert (held.ledger_total, held.stripe_total) == (3_000, 3_000)
    assert report.balanced


def test_reconciliation_finds_a_transaction_missing_in_the_ledger(card_movements, period):
    now = int(timezone.now().timestamp())
    card_movements.add_balance_transaction(
        type="issuing_transaction", amount=-700, source="ipi_3", created=now
    )

    report = card_settlement_reconcile(currency="EUR", since=period[0], until=period[1])

    posted = report.comparisons[0]
    assert posted.difference == -700
    assert posted.differences() == [("ipi_3", 0, 700)]
    assert not report.balanced
    assert any("ipi_3" in line and "missing in the ledger" in line for line in report.lines())


def test_reconciliation_finds_an_amount_that_differs(card_movements, period):
    card_movements.balance_transactions[0]["amount"] = -3_100

    report = card_settlement_reconcile(currency="EUR", since=period[0], until=period[1])

    assert report.comparisons[1].differences() == [("iauth_1", 3_000, 3_100)]
    assert not report.balanced


def test_reconciliation_reads_every_page_of_stripe(stripe_fake, period):
    now = int(timezone.now().timestamp())
    for _ in range(150):
        stripe_fake.add_balance_transaction(
            type="issuing_transaction", amount=-1, source=None, created=now
        )

    report = card_settlement_reconcile(currency="EUR", since=period[0], until=period[1])

    assert report.comparisons[0].stripe_total == 150
    pages = stripe_fake.sent("GET", r"/v1/balance_transactions")
    assert any("starting_after" in request.query for request in pages)


def test_reconciliation_leaves_out_what_is_outside_the_period(card_movements, period):
    long_ago = int((timezone.now() - timedelta(days=30)).timestamp())
    card_movements.add_balance_transaction(
        type="issuing_transaction", amount=-999, source="ipi_old", created=long_ago
    )

    assert card_settlement_reconcile(currency="EUR", since=period[0], until=period[1]).balanced


def test_the_command_exits_1_on_a_difference(card_movements, period, capsys):
    since, until = (moment.isoformat() for moment in period)
    call_command("stripe", "reconcile", "--since", since, "--until", until)
    assert "balanced" in capsys.readouterr().out

    now = int(timezone.now().timestamp())
    card_movements.add_balance_transaction(
        type="issuing_transaction", amount=-1, source="ipi_9", created=now
    )
    with pytest.raises(CommandError):
        call_command("stripe", "reconcile", "--since", since, "--until", until)
    assert "NOT balanced" in capsys.readouterr().out
