"""One-time payment codes (wallet.payment_codes): created by the beneficiary's app, redeemed once
by a merchant. Time stands still at START unless a test moves it."""

import random
import re
import types
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from core.errors import DomainError, PaymentCodeError
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_merchant
from tests.markers import postgresql_only
from wallet import payment_codes
from wallet.models.payment_codes import PaymentCode
from wallet.payment_codes import (
    MAX_FAILED_ATTEMPTS,
    MAX_USABLE_CODES_PER_WALLET,
    payment_code_create,
    payment_code_format,
    payment_code_normalize,
    payment_code_qr_svg,
    payment_code_redeem,
)
from wallet.services import wallet_freeze, wallet_unfreeze

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(seconds=300)
COOLING_OFF = timedelta(seconds=900)


@pytest.fixture(autouse=True)
def frozen_time(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def wallet(db):
    return BeneficiaryFactory().wallet


@pytest.fixture
def code(wallet):
    """An active code of `wallet`, as (row, digits)."""
    return payment_code_create(wallet=wallet)


def snapshot():
    return list(PaymentCode.objects.order_by("pk").values())


def wrong_secret(digits: str, n: int = 0) -> str:
    """The same slot with another secret."""
    secret = (int(digits[4:]) + 1 + n) % 1_000_000
    return f"{digits[:4]}{secret:06d}"


def redeem(digits: str, amount: int = 1_250, currency: str = "EUR", **kwargs) -> PaymentCode:
    return payment_code_redeem(code=digits, amount=amount, currency=currency, **kwargs)


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value.code


# --- creation ---------------------------------------------------------------------------------


def test_create_returns_ten_digits_and_stores_no_clear_code(wallet):
    payment_code, digits = payment_code_create(wallet=wallet, max_amount=5_000)

    assert re.fullmatch(r"[0-9]{10}", digits)
    (row,) = PaymentCode.objects.filter(pk=payment_code.pk).values()
    for column, value in row.items():
        assert digits not in str(value), column
        assert digits[4:] not in str(value), column  # the secret, the part that is no key
    assert row["slot"] == digits[:4]
    assert row["status"] == "active"
    assert row["max_amount"] == 5_000
    assert row["expires_at"] == START + LIFETIME


def test_the_lifetime_comes_from_the_settings(wallet, settings):
    settings.PAYMENT_CODE_TTL_SECONDS = 60

    payment_code, _digits = payment_code_create(wallet=wallet)

    assert payment_code.expires_at == START + timedelta(seconds=60)


def test_a_frozen_wallet_cannot_create_a_code(wallet):
    wallet_freeze(wallet=wallet, reason="fraud suspected")

    assert refused(payment_code_create, wallet=wallet) == "wallet_frozen"
    assert not PaymentCode.objects.exists()


@pytest.mark.parametrize("max_amount", [0, -5, True, 12.5, "100"])
def test_a_maximum_amount_must_be_whole_cents_above_zero(wallet, max_amount):
    assert refused(payment_code_create, wallet=wallet, max_amount=max_amount) == "invalid_amount"
    assert not PaymentCode.objects.exists()


@pytest.mark.parametrize("currency", ["eur", "EURO", "", None])
def test_a_currency_must_be_an_iso_code(wallet, currency):
    assert refused(payment_code_create, wallet=wallet, currency=currency) == "invalid_request"


def test_usable_codes_get_different_slots(db):
    slots = {payment_code_create(wallet=BeneficiaryFactory().wallet)[0].slot for _ in range(20)}

    assert len(slots) == 20


def test_a_new_code_beyond_the_wallet_cap_retires_the_oldest(wallet):
    # given a wallet holding as many usable codes as it may
    codes = [payment_code_create(wallet=wallet) for _ in range(MAX_USABLE_CODES_PER_WALLET)]

    # when it creates one more
    newest, _digits = payment_code_create(wallet=wallet)

    # then the oldest is retired and refused, the others still work
    oldest, oldest_digits = codes[0]
    oldest.refresh_from_db()
    assert oldest.status == "expired"
    assert set(PaymentCode.objects.filter(status="active").values_list("pk", flat=True)) == {
        newest.pk,
        *(payment_code.pk for payment_code, _digits in codes[1:]),
    }
    assert refused(redeem, oldest_digits) == "payment_code_expired"
    assert redeem(codes[1][1]).status == "used"


def test_a_wallet_creating_codes_in_a_loop_holds_few_slots(wallet):
    for _ in range(30):
        payment_code_create(wallet=wallet)

    assert PaymentCode.objects.filter(status="active").count() == MAX_USABLE_CODES_PER_WALLET


# --- redemption -------------------------------------------------------------------------------


def test_redeem_marks_the_code_used_and_returns_its_wallet(wallet, code):
    payment_code, digits = code

    redeemed = redeem(digits)

    assert redeemed.pk == payment_code.pk
    assert redeemed.wallet == wallet
    payment_code.refresh_from_db()
    assert payment_code.status == "used"
    assert payment_code.used_at == START


@pytest.mark.parametrize(
    "typed",
    [
        "{0} {1} {2}",
        "{0}-{1}-{2}",
        " {0}{1}{2} ",
        "{0}\u00a0{1}\u00a0{2}",  # no-break spaces
        "{0}\u202f{1}\u202f{2}",  # narrow no-break spaces, as French groups digits
    ],
)
def test_redeem_accepts_the_code_as_shown_or_typed(code, typed):
    _payment_code, digits = code

    redeemed = redeem(typed.format(digits[:4], digits[4:7], digits[7:]))

    assert redeemed.status == "used"


def test_redeem_takes_an_amount_up_to_the_maximum(wallet):
    _payment_code, digits = payment_code_create(wallet=wallet, max_amount=2_000)

    assert redeem(digits, amount=2_000).status == "used"


def test_redeem_pins_its_queries(code, django_assert_num_queries):
    _payment_code, digits = code

    # the slot, the wallet's lock, the code's lock, the caller's lockout, the update (no
    # savepoint: refusals are returned, not raised, inside the block)
    with django_assert_num_queries(5):
        redeem(digits)


def test_a_used_code_is_refused_and_nothing_changes(code):
    _payment_code, digits = code
    redeem(digits)
    before = snapshot()

    assert refused(redeem, digits) == "payment_code_used"
    assert snapshot() == before


def test_a_retry_of_the_request_that_used_the_code_returns_it(code):
    payment_code, digits = code
    redeem(digits, idempotency_key="api:1:abc")
    before = snapshot()

    again = redeem(digits, idempotency_key="api:1:abc")

    assert again.pk == payment_code.pk
    assert snapshot() == before
    assert refused(redeem, digits, idempotency_key="api:1:other") == "payment_code_used"
    assert refused(redeem, digits) == "payment_code_used"


def test_an_expired_code_is_refused_and_nothing_changes(code, frozen_time):
    _payment_code, digits = code
    before = snapshot()
    frozen_time.move_to(START + LIFETIME)

    assert refused(redeem, digits) == "payment_code_expired"
    assert snapshot() == before


def test_a_code_is_still_valid_just_before_it_expires(code, frozen_time):
    _payment_code, digits = code
    frozen_time.move_to(START + LIFETIME - timedelta(seconds=1))

    assert redeem(digits).status == "used"


def test_an_amount_over_the_maximum_is_refused_and_nothing_changes(wallet):
    _payment_code, digits = payment_code_create(wallet=wallet, max_amount=2_000)
    before = snapshot()

    assert refused(redeem, digits, amount=2_001) == "payment_code_amount_exceeded"
    assert snapshot() == before


def test_another_currency_is_refused_and_nothing_changes(code):
    _payment_code, digits = code
    before = snapshot()

    assert refused(redeem, digits, currency="USD") == "payment_code_currency_mismatch"
    assert snapshot() == before


@pytest.mark.parametrize(
    "typed",
    [
        "12345abcde",
        "123456789",
        "12345678901",
        "",
        "   ",
        "١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits
        "".join(chr(0xFF10 + int(d)) for d in "1234567890"),  # fullwidth digits
        "1234.567.890",
        "1234 567 89O",
        "1" * 10_000,
        None,
        1234567890,
    ],
)
def test_a_malformed_code_is_refused_and_nothing_changes(code, typed):
    before = snapshot()

    assert refused(redeem, typed) == "payment_code_malformed"
    assert snapshot() == before


@pytest.mark.parametrize("amount", [0, -1, True, 12.5, "1250"])
def test_a_bad_amount_is_refused_and_nothing_changes(code, amount):
    _payment_code, digits = code
    before = snapshot()

    assert refused(redeem, digits, amount=amount) == "invalid_amount"
    assert snapshot() == before


def test_a_code_on_no_slot_in_use_is_invalid_and_nothing_changes(code):
    payment_code, _digits = code
    other_slot = f"{(int(payment_code.slot) + 1) % 10_000:04d}"
    before = snapshot()

    assert refused(redeem, other_slot + "123456") == "payment_code_invalid"
    assert snapshot() == before


def test_a_rolled_back_authorization_gives_the_code_back(code):
    payment_code, digits = code

    with pytest.raises(RuntimeError), transaction.atomic():
        redeem(digits)
        raise RuntimeError("the authorization failed")

    payment_code.refresh_from_db()
    assert payment_code.status == "active"
    assert redeem(digits).status == "used"


# --- guessing ---------------------------------------------------------------------------------


def test_a_wrong_secret_is_invalid_and_counted_on_the_code(code):
    payment_code, digits = code

    assert refused(redeem, wrong_secret(digits)) == "payment_code_invalid"

    payment_code.refresh_from_db()
    assert payment_code.failed_attempts == 1
    assert payment_code.status == "active"
    assert redeem(digits).status == "used"


def test_a_wrong_secret_is_counted_when_the_caller_commits_as_documented(code):
    payment_code, digits = code

    with transaction.atomic():
        try:
            redeem(wrong_secret(digits))
        except PaymentCodeError as error:
            refusal = error
    assert refusal.code == "payment_code_invalid"

    payment_code.refresh_from_db()
    assert payment_code.failed_attempts == 1


def test_a_wrong_secret_on_an_expired_code_is_not_counted(code, frozen_time):
    _payment_code, digits = code
    frozen_time.move_to(START + LIFETIME)
    before = snapshot()

    assert refused(redeem, wrong_secret(digits)) == "payment_code_invalid"
    assert snapshot() == before


def locked_out(merchant, digits: str, count: int = MAX_FAILED_ATTEMPTS) -> None:
    """`merchant` sends `count` wrong secrets on the code of `digits`."""
    answers = {refused(redeem, wrong_secret(digits, n), merchant=merchant) for n in range(count)}
    assert answers == {"payment_code_invalid"}


def test_repeated_wrong_secrets_lock_the_merchant_out_of_the_wallet_s_codes(wallet, merchant):
    # given two codes of one wallet and a code of another
    _first, first_digits = payment_code_create(wallet=wallet)
    _second, second_digits = payment_code_create(wallet=wallet)
    _other, other_digits = payment_code_create(wallet=BeneficiaryFactory().wallet)

    # when one merchant sends five wrong secrets on the first code
    locked_out(merchant, first_digits)

    # then that merchant is refused on every code of the wallet, the right digits included,
    # and told for how long; the codes stay usable; another wallet's code is not affected
    with translation.override("en"), pytest.raises(PaymentCodeError) as caught:
        redeem(second_digits, merchant=merchant)
    assert caught.value.code == "payment_code_locked"
    assert caught.value.details["retry_after"] == COOLING_OFF.total_seconds()
    assert "in 15 minutes" in str(caught.value.message)
    assert set(PaymentCode.objects.values_list("status", flat=True)) == {"active"}
    assert redeem(other_digits, merchant=merchant).status == "used"


def test_a_merchant_s_lockout_leaves_the_beneficiary_free(wallet, merchant):
    payment_code, digits = payment_code_create(wallet=wallet)
    locked_out(merchant, digits)

    # another merchant is paid with the same code, and the wallet creates codes as before
    assert redeem(digits, merchant=make_merchant()).pk == payment_code.pk
    assert payment_code_create(wallet=wallet)[0].status == "active"


def test_a_locked_merchant_s_guesses_are_not_compared_nor_counted(wallet, merchant):
    payment_code, digits = payment_code_create(wallet=wallet)
    locked_out(merchant, digits)

    assert refused(redeem, wrong_secret(digits, 99), merchant=merchant) == "payment_code_locked"

    payment_code.refresh_from_db()
    assert payment_code.failed_attempts == MAX_FAILED_ATTEMPTS


def test_four_wrong_secrets_do_not_lock_anything(code, merchant):
    _payment_code, digits = code
    locked_out(merchant, digits, MAX_FAILED_ATTEMPTS - 1)

    assert redeem(digits, merchant=merchant).status == "used"


def test_wrong_secrets_on_several_codes_of_a_wallet_add_up(wallet, merchant):
    _first, first_digits = payment_code_create(wallet=wallet)
    _second, second_digits = payment_code_create(wallet=wallet)

    locked_out(merchant, first_digits, 3)
    locked_out(merchant, second_digits, 2)

    assert refused(redeem, second_digits, merchant=merchant) == "payment_code_locked"


def test_several_merchants_wrong_secrets_do_not_add_up(code):
    _payment_code, digits = code
    for _ in range(3):
        locked_out(make_merchant(), digits, MAX_FAILED_ATTEMPTS - 1)

    assert redeem(digits, merchant=make_merchant()).status == "used"


def test_the_lockout_ends_with_the_cooling_off_period(wallet, merchant, frozen_time):
    _first, first_digits = payment_code_create(wallet=wallet)
    locked_out(merchant, first_digits)
    frozen_time.move_to(START + COOLING_OFF - timedelta(seconds=1))
    _second, second_digits = payment_code_create(wallet=wallet)
    assert refused(redeem, second_digits, merchant=merchant) == "payment_code_locked"

    frozen_time.move_to(START + COOLING_OFF)

    assert redeem(second_digits, merchant=merchant).status == "used"


def test_an_unfrozen_wallet_can_create_again(wallet):
    wallet_freeze(wallet=wallet, reason="check")
    wallet_unfreeze(wallet=wallet)

    payment_code, _digits = payment_code_create(wallet=wallet)

    assert payment_code.status == "active"


# --- slots ------------------------------------------------------------------------------------


def test_a_taken_slot_makes_creation_pick_a_free_one(wallet, monkeypatch):
    # a random source that always draws the first slot and the first free slot
    monkeypatch.setattr(payment_codes, "SLOTS", 3)
    monkeypatch.setattr(
        payment_codes, "secrets", types.SimpleNamespace(randbelow=lambda n: 0, choice=min)
    )

    slots = [payment_code_create(wallet=wallet)[0].slot for _ in range(3)]

    assert slots == ["0000", "0001", "0002"]


def test_a_taken_slot_is_replaced_without_reading_every_usable_code(wallet, monkeypatch):
    monkeypatch.setattr(payment_codes, "SLOTS", 100)
    taken = {payment_code_create(wallet=BeneficiaryFactory().wallet)[0].slot for _ in range(10)}
    # the creation's first draw is a taken slot, the next ones come from a seeded source
    first, seeded = [int(min(taken))], random.Random(7)
    monkeypatch.setattr(
        payment_codes,
        "secrets",
        types.SimpleNamespace(
            randbelow=lambda n: first.pop() if first else seeded.randrange(n),
            choice=seeded.choice,
        ),
    )

    with CaptureQueriesContext(connection) as queries:
        payment_code, _digits = payment_code_create(wallet=wallet)

    assert payment_code.slot not in taken
    # the reads of usable codes' slots (the insert returns only the new code's id)
    slot_reads = [q["sql"] for q in queries if '"wallet_paymentcode"."slot" AS "slot"' in q["sql"]]
    assert len(slot_reads) == 1
    assert " IN (" in slot_reads[0]  # a few candidates, not every usable code


def test_an_exhausted_slot_space_is_a_clear_error(wallet, monkeypatch):
    monkeypatch.setattr(payment_codes, "SLOTS", 3)
    others = [BeneficiaryFactory().wallet for _ in range(3)]
    slots = {payment_code_create(wallet=other)[0].slot for other in others}
    assert slots == {"0000", "0001", "0002"}

    assert refused(payment_code_create, wallet=wallet) == "payment_code_unavailable"
    assert PaymentCode.objects.count() == 3
    assert set(PaymentCode.objects.values_list("status", flat=True)) == {"active"}


def test_an_expired_code_gives_its_slot_back(wallet, monkeypatch, frozen_time):
    monkeypatch.setattr(payment_codes, "SLOTS", 1)
    stale, stale_digits = payment_code_create(wallet=wallet)
    frozen_time.move_to(START + LIFETIME)

    fresh, fresh_digits = payment_code_create(wallet=wallet)

    stale.refresh_from_db()
    assert (stale.slot, stale.status) == (fresh.slot, "expired")
    assert refused(redeem, stale_digits) in {"payment_code_expired", "payment_code_invalid"}
    assert redeem(fresh_digits).pk == fresh.pk


def test_a_used_code_gives_its_slot_back(wallet, monkeypatch):
    monkeypatch.setattr(payment_codes, "SLOTS", 1)
    _used, used_digits = payment_code_create(wallet=wallet)
    redeem(used_digits)

    fresh, fresh_digits = payment_code_create(wallet=wallet)

    if fresh_digits != used_digits:  # one chance in a million that the secret is drawn again
        assert refused(redeem, used_digits) == "payment_code_used"  # not counted as a guess
        fresh.refresh_from_db()
        assert fresh.failed_attempts == 0
    assert redeem(fresh_digits).pk == fresh.pk


# --- rendering --------------------------------------------------------------------------------


def test_format_groups_the_digits():
    assert payment_code_format("1234567890") == "1234 567 890"
    assert payment_code_normalize("1234 567-890") == "1234567890"


def test_qr_svg_is_a_standalone_svg_document():
    svg = payment_code_qr_svg("1234 567 890")

    assert svg.startswith("<svg")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.rstrip().endswith("</svg>")


def test_qr_svg_refuses_a_malformed_code():
    assert refused(payment_code_qr_svg, "12345") == "payment_code_malformed"


# --- transactions and concurrency -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_wrong_secret_outside_any_transaction_is_counted():
    _payment_code, digits = payment_code_create(wallet=BeneficiaryFactory().wallet)

    assert refused(redeem, wrong_secret(digits)) == "payment_code_invalid"

    assert PaymentCode.objects.get().failed_attempts == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_of_one_code_let_exactly_one_win():
    payment_code, digits = payment_code_create(wallet=BeneficiaryFactory().wallet)

    outcomes = run_together([lambda n=n: redeem(digits, amount=100 + n) for n in range(20)])

    wins = [outcome for outcome in outcomes if isinstance(outcome, PaymentCode)]
    assert len(wins) == 1, outcomes
    assert {getattr(o, "code", repr(o)) for o in outcomes if o not in wins} == {"payment_code_used"}
    payment_code.refresh_from_db()
    assert payment_code.status == "used"


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_secrets_are_counted_one_by_one_up_to_the_lockout():
    wallet = BeneficiaryFactory().wallet
    merchant = make_merchant()
    payment_code, digits = payment_code_create(wallet=wallet)

    outcomes = run_together(
        [lambda n=n: redeem(wrong_secret(digits, n), merchant=merchant) for n in range(20)]
    )

    # each guess waits for the wallet's lock, so exactly five are compared and counted
    answers = sorted(getattr(o, "code", repr(o)) for o in outcomes)
    assert answers == ["payment_code_invalid"] * MAX_FAILED_ATTEMPTS + ["payment_code_locked"] * (
        20 - MAX_FAILED_ATTEMPTS
    )
    payment_code.refresh_from_db()
    assert (payment_code.status, payment_code.failed_attempts) == ("active", MAX_FAILED_ATTEMPTS)
    assert refused(redeem, digits, merchant=merchant) == "payment_code_locked"
    assert payment_code_create(wallet=wallet)[0].status == "active"


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_share_a_slot(monkeypatch):
    monkeypatch.setattr(payment_codes, "SLOTS", 8)
    wallets = [BeneficiaryFactory().wallet for _ in range(16)]

    outcomes = run_together([lambda w=w: payment_code_create(wallet=w) for w in wallets])

    created = [outcome[0] for outcome in outcomes if isinstance(outcome, tuple)]
    errors = {getattr(o, "code", repr(o)) for o in outcomes if not isinstance(o, tuple)}
    assert errors <= {"payment_code_unavailable"}, outcomes
    assert 1 <= len(created) <= 8
    slots = list(PaymentCode.objects.filter(status="active").values_list("slot", flat=True))
    assert len(slots) == len(set(slots)) == len(created)
