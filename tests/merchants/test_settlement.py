"""Settlement batches and payouts: captures and refunds on a merchant's payable, gathered once
into daily batches; a negative net carried forward; a payout in the ledger for a positive one."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from ledger.models import Account, Transfer
from ledger.selectors import account_balance
from ledger.verify import verify
from merchants import tasks
from merchants.models.settlement import Payout, SettlementBatch, SettlementLine
from merchants.payments import payment_authorize, payment_refund
from merchants.services import MerchantNotActive, merchant_suspend
from merchants.settlement import (
    SettlementPeriodClosed,
    payout_account,
    settlement_close,
    settlement_until,
    stripe_payout_send,
)
from tests.concurrency import run_together
from tests.factories import make_merchant, make_payment_code
from tests.markers import postgresql_only
from tests.stripe_fake import stripe_fake  # noqa: F401  (the fixture)

# Tomorrow at midnight, Paris time: every scenario happens in days to come, while the aid is valid.
DAY = timedelta(days=1)


@pytest.fixture
def day0(db):
    return settlement_until() + DAY


@pytest.fixture
def wallet(pocket):
    return pocket.wallet


@pytest.fixture
def pay(merchant, wallet):
    """Authorize and capture `amount` at `when`; returns the authorization."""

    def call(amount: int, when, *, at=None):
        with time_machine.travel(when, tick=False):
            decision = payment_authorize(
                merchant=at or merchant,
                amount=amount,
                currency="EUR",
                payment_code=make_payment_code(wallet),
                capture=True,
            )
        assert decision.approved_amount == amount, decision.reason
        return decision

    return call


@pytest.fixture
def refund(merchant):
    def call(decision, amount: int, when):
        with time_machine.travel(when, tick=False):
            return payment_refund(
                merchant=merchant, decision=decision, amount=amount, idempotency_key=None
            )

    return call


def close(merchant, until):
    return settlement_close(merchant=merchant, currency="EUR", until=until)


def payouts_of(merchant):
    return Transfer.objects.filter(kind=Transfer.Kind.PAYOUT, metadata__merchant=merchant.pk)


def test_batches_over_days_take_each_capture_once(merchant, pay, day0):
    # given two captures on day 0 and one on day 1
    pay(1_000, day0 + timedelta(hours=10))
    pay(2_500, day0 + timedelta(hours=15))
    pay(700, day0 + DAY + timedelta(hours=11))

    # when the days are closed one after the other, and the first one again
    first = close(merchant, day0 + DAY)
    second = close(merchant, day0 + 2 * DAY)
    again = close(merchant, day0 + DAY)

    # then each batch holds its day's captures, once, and pays them out
    assert again.pk == first.pk
    assert (first.captured, first.net, first.lines.count()) == (3_500, 3_500, 2)
    assert (second.captured, second.net, second.lines.count()) == (700, 700, 1)
    assert second.period_start == first.period_end
    assert sorted(payouts_of(merchant).values_list("amount", flat=True)) == [700, 3_500]
    assert account_balance(merchant.payable_account) == 0
    assert verify() == []


def test_nothing_to_settle_builds_no_batch(merchant, day0):
    assert close(merchant, day0) is None
    assert not SettlementBatch.objects.exists()


def test_a_capture_after_the_period_waits_for_the_next_batch(merchant, pay, day0):
    pay(1_000, day0 + timedelta(hours=10))
    pay(400, day0 + DAY + timedelta(minutes=1))

    batch = close(merchant, day0 + DAY)

    assert batch.net == 1_000
    assert account_balance(merchant.payable_account) == 400


def test_the_payout_is_a_ledger_transfer_from_payable_to_payout(merchant, pay, day0):
    pay(1_250, day0 + timedelta(hours=9))

    batch = close(merchant, day0 + DAY)

    transfer = batch.payout.transfer
    assert transfer.kind == Transfer.Kind.PAYOUT
    assert transfer.metadata == {"merchant": merchant.pk, "batch": batch.pk}
    assert transfer.idempotency_key == f"payout:{batch.pk}"
    legs = {entry.account.code: entry.amount for entry in transfer.entries.all()}
    assert legs == {merchant.payable_account.code: -1_250, "payout:EUR": 1_250}
    account = payout_account("EUR")
    assert (account.kind, account.guarded) == (Account.Kind.PAYOUT, False)
    assert batch.payout.status == Payout.Status.PENDING
    assert batch.payout.method == Payout.Method.SEPA


def test_partial_refund_after_settlement_is_a_negative_line_of_the_next_batch(
    merchant, pay, refund, day0
):
    # given a payment settled and paid out on day 0
    decision = pay(3_000, day0 + timedelta(hours=10))
    close(merchant, day0 + DAY)

    # when part of it is refunded on day 1, with a smaller new payment
    refund(decision, 1_000, day0 + DAY + timedelta(hours=9))
    pay(400, day0 + DAY + timedelta(hours=12))
    negative = close(merchant, day0 + 2 * DAY)

    # then day 1's batch nets to -600 and pays nothing
    kinds = sorted(negative.lines.values_list("kind", "amount"))
    assert kinds == [("payment", 400), ("refund", -1_000)]
    assert (negative.refunded, negative.net) == (1_000, -600)
    assert not Payout.objects.filter(batch=negative).exists()

    # and the -600 is carried into day 2's batch as a negative line
    pay(2_000, day0 + 2 * DAY + timedelta(hours=8))
    carrying = close(merchant, day0 + 3 * DAY)
    carried = carrying.lines.get(kind=SettlementLine.Kind.CARRIED)
    assert (carried.amount, carried.carried_from) == (-600, negative)
    assert (carrying.carried, carrying.net) == (-600, 1_400)
    assert carrying.payout.amount == 1_400
    assert sum(payouts_of(merchant).values_list("amount", flat=True)) == 3_000 + 1_400
    assert account_balance(merchant.payable_account) == 0
    assert verify() == []


def test_a_negative_net_waits_while_nothing_new_happens(merchant, pay, refund, day0):
    decision = pay(3_000, day0 + timedelta(hours=10))
    close(merchant, day0 + DAY)
    refund(decision, 500, day0 + DAY + timedelta(hours=9))
    negative = close(merchant, day0 + 2 * DAY)

    assert close(merchant, day0 + 3 * DAY) is None

    pay(100, day0 + 3 * DAY + timedelta(hours=9))
    later = close(merchant, day0 + 4 * DAY)
    assert later.lines.get(kind="carried").carried_from == negative
    assert later.net == -400
    # a batch is carried once: -400 is what the next one carries, not -500 again
    pay(1_000, day0 + 4 * DAY + timedelta(hours=9))
    assert close(merchant, day0 + 5 * DAY).net == 600


def test_a_merchant_suspended_mid_period_is_paid_for_what_it_captured(merchant, pay, wallet, day0):
    # given a capture in the morning, then the merchant suspended at noon
    pay(1_800, day0 + timedelta(hours=9))
    merchant_suspend(merchant=merchant)
    with time_machine.travel(day0 + timedelta(hours=14), tick=False):
        code = make_payment_code(wallet)
        with pytest.raises(MerchantNotActive):
            payment_authorize(
                merchant=merchant, amount=500, currency="EUR", payment_code=code, capture=True
            )

    # when the day is closed
    batch = close(merchant, day0 + DAY)

    # then the morning's capture is paid out all the same
    assert (batch.lines.count(), batch.net, batch.payout.amount) == (1, 1_800, 1_800)


def test_an_earlier_period_cannot_be_closed_after_a_later_one(merchant, pay, day0):
    pay(100, day0 + timedelta(hours=9))
    close(merchant, day0 + DAY)

    with pytest.raises(SettlementPeriodClosed):
        close(merchant, day0 + timedelta(hours=12))


def test_a_transfer_is_in_one_batch_at_most(merchant, pay, day0):
    pay(100, day0 + timedelta(hours=9))
    batch = close(merchant, day0 + DAY)
    line = batch.lines.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        SettlementLine.objects.create(
            batch=batch,
            kind=line.kind,
            amount=line.amount,
            transfer=line.transfer,
            occurred_at=line.occurred_at,
        )


def test_the_daily_task_closes_every_merchant_due(merchant, pay, wallet, day0, monkeypatch):
    other = make_merchant()
    pay(300, day0 + timedelta(hours=9))
    pay(200, day0 + timedelta(hours=10), at=other)
    monkeypatch.setattr(tasks.send_stripe_payout, "delay", lambda pk: None)

    with time_machine.travel(day0 + DAY + timedelta(minutes=15), tick=False):
        assert tasks.close_settlement_batches() == 2
        assert tasks.close_settlement_batches() == 0

    assert SettlementBatch.objects.filter(period_end=day0 + DAY).count() == 2


def test_settlement_until_is_midnight_in_paris():
    # 23:30 UTC on 30 March is 01:30 on the 31st in Paris (summer time)
    now = datetime(2027, 3, 30, 23, 30, tzinfo=UTC)
    until = settlement_until(now)
    assert until.isoformat() == "2027-03-31T00:00:00+02:00"


# --- Stripe ------------------------------------------------------------------------------------


@pytest.fixture
def connected(db):
    return make_merchant(stripe_account_id="acct_1Nv0FGQ9RKHgCVdK")


@pytest.fixture
def stripe_payout(connected, wallet, pay, day0):
    pay(4_321, day0 + timedelta(hours=9), at=connected)
    batch = close(connected, day0 + DAY)
    assert batch.payout.method == Payout.Method.STRIPE
    return batch.payout


def test_a_stripe_payout_is_a_transfer_to_the_connected_account(stripe_fake, stripe_payout):  # noqa: F811
    payout = stripe_payout_send(payout=stripe_payout)

    [sent] = stripe_fake.sent("POST", "/v1/transfers")
    assert sent.form == {
        "amount": "4321",
        "currency": "eur",
        "destination": "acct_1Nv0FGQ9RKHgCVdK",
        "transfer_group": payout.batch.reference,
        "metadata": {"batch": payout.batch.reference},
    }
    assert sent.headers["Idempotency-Key"] == f"payout:{payout.batch_id}"
    assert payout.status == Payout.Status.PAID
    assert payout.stripe_transfer_id in stripe_fake.transfers


def test_a_stripe_payout_retried_makes_one_transfer(stripe_fake, stripe_payout):  # noqa: F811
    # the first answer is lost on the network: the library retries with the same key
    stripe_fake.drop_responses("POST", "/v1/transfers", times=1)

    payout = stripe_payout_send(payout=stripe_payout)
    stripe_payout_send(payout=payout)

    assert len(stripe_fake.sent("POST", "/v1/transfers")) == 2
    assert len(stripe_fake.transfers) == 1
    assert payout.status == Payout.Status.PAID


def test_a_refused_stripe_transfer_fails_the_payout(stripe_fake, stripe_payout):  # noqa: F811
    # an id the model would refuse, as if the account was closed: the fake refuses it
    type(stripe_payout.batch.merchant).objects.filter(pk=stripe_payout.batch.merchant_id).update(
        stripe_account_id="acct_"
    )

    payout = stripe_payout_send(payout=stripe_payout)

    assert payout.status == Payout.Status.FAILED
    assert "destination" in payout.failure_reason


# --- two workers at once ------------------------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_the_same_batch_build_it_once(merchant, pay, day0):
    # given a day of captures
    for hour in (9, 10, 11):
        pay(1_000, day0 + timedelta(hours=hour))

    # when several workers close the same period at once
    outcomes = run_together([lambda: close(merchant, day0 + DAY) for _ in range(8)])

    # then every one returns the same batch, and nothing is doubled
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    assert len({batch.pk for batch in outcomes}) == 1
    assert SettlementBatch.objects.count() == 1
    assert SettlementLine.objects.count() == 3
    assert [t.amount for t in payouts_of(merchant)] == [3_000]
    assert account_balance(merchant.payable_account) == 0
    assert verify() == []
