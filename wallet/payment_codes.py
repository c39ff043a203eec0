"""One-time payment codes: how a beneficiary pays with the mobile app. The app creates a code,
shows it as "1234 567 890" and as a QR code, and the merchant types or scans it into the
authorization it sends to the merchant API.

A code is 10 digits: the first 4 are its **slot**, the lookup key, unique among the codes still
usable; the last 6 are its **secret**. Only the slot is stored in clear, with an HMAC-SHA256 of
the whole code keyed by a key derived from SECRET_KEY (a plain hash of 10 digits is reversed
offline in seconds; the HMAC key is not in the database). A code lives a few minutes
(PAYMENT_CODE_TTL_SECONDS, 300 by default), is used at most once, belongs to one wallet, and may
carry a maximum amount and its currency.

Guessing. A code that matches no usable slot is simply invalid. A wrong secret on a usable slot
is recorded (PaymentCodeFailure) against the wallet and the merchant that sent it; once one
merchant has sent MAX_FAILED_ATTEMPTS wrong secrets on a wallet's codes within the cooling-off
period (PAYMENT_CODE_LOCKOUT_SECONDS, 900 by default), that merchant is refused on every code of
that wallet (payment_code_locked) until its failures age out of the period. The wallet's codes
stay valid and the beneficiary keeps creating codes and paying at other shops: one merchant's
guesses, honest typos or a spray, never lock the person out.

Why this bounds an attacker: a code is 10 digits, and at most SLOTS (10^4) codes are usable at
once, each with its own 10^6 secrets, so one guess of 10 digits matches a usable code with a
probability of at most SLOTS / 10^10 = 10^-6, whatever the guesser knows of the slots in use.
The success probability of an attacker is therefore at most (wrong codes it may send) x 10^-6,
and the merchant API caps those (merchants/code_guessing.py): PAYMENT_CODE_FAILURES_PER_MERCHANT
per window for one merchant, all its keys together (a new key buys no new tries), and
PAYMENT_CODE_FAILURES_PLATFORM per window for all merchants together, so that even many
colluding merchants stay within a known budget (e.g. 500 an hour: at most 0.05 % a hour). The
per (wallet, merchant) lockout adds that one merchant aiming at one person gets at most
MAX_FAILED_ATTEMPTS tries per cooling-off period on that person's (at most
MAX_USABLE_CODES_PER_WALLET) codes. A merchant is an approved business, flagged for review when it
reaches its limit. A locked merchant is told so (not "invalid"): it learns that it was guessing on
a live slot, which it can no longer use.

Locks: a service that changes a wallet's codes locks the wallet row first, then code rows, the
order the authorization engine already uses (wallet, then what hangs from it). A creation and a
lockout therefore never interleave, and two redemptions of one code are queued: exactly one wins.
"""

import hmac
import io
import math
import re
import secrets
from datetime import datetime, timedelta

import segno
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.errors import (
    AmountTooLarge,
    DomainError,
    InvalidAmount,
    PaymentCodeAmountExceeded,
    PaymentCodeCurrencyMismatch,
    PaymentCodeError,
    PaymentCodeExpired,
    PaymentCodeInvalid,
    PaymentCodeLocked,
    PaymentCodeMalformed,
    PaymentCodeUnavailable,
    PaymentCodeUsed,
    WalletFrozen,
)
from core.money import MAX_AMOUNT
from wallet.locks import wallet_lock
from wallet.models.payment_codes import SLOT_DIGITS, PaymentCode, PaymentCodeFailure

__all__ = [
    "PaymentCode",
    "PaymentCodeFailure",
    "payment_code_create",
    "payment_code_fits",
    "payment_code_format",
    "payment_code_normalize",
    "payment_code_qr_svg",
    "payment_code_redeem",
    "payment_code_used_sql",
]

SECRET_DIGITS = 6
CODE_DIGITS = SLOT_DIGITS + SECRET_DIGITS
# How many slots there are, so how many codes can be usable at once on the whole platform. The
# tests shrink it; it must stay <= 10 ** SLOT_DIGITS.
SLOTS = 10**SLOT_DIGITS
# Wrong secrets a wallet's codes may collect within one code lifetime before they are cancelled.
MAX_FAILED_ATTEMPTS = 5
# Usable codes one wallet may hold: a new code beyond it retires the wallet's oldest (marked
# expired). Without a cap, one account creating codes in a loop would take every slot of the
# platform within seconds, and nobody could create a code until they expire.
MAX_USABLE_CODES_PER_WALLET = 3
# Slots tried by one creation before it gives up (concurrent creations may take the same one).
_CREATE_ATTEMPTS = 5
# Random slots a creation whose first slot was taken looks up before it reads every usable one.
_CANDIDATES = 32

_HMAC_SALT = "wallet.models.payment_codes.PaymentCode.digest"
# What a person may type between the digits: spaces of any kind (the app groups the digits with
# a narrow no-break space in French) and dashes. Anything else is refused, so are non-ASCII
# digits ("١٢٣" is not "123" for us: a code is typed on a Latin keypad or scanned).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_DIGITS = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_MAX_INPUT_LENGTH = 64
_CURRENCY = re.compile(r"[A-Z]{3}")


def code_lifetime() -> timedelta:
    return timedelta(seconds=getattr(settings, "PAYMENT_CODE_TTL_SECONDS", 300))


def lockout_period() -> timedelta:
    return timedelta(seconds=getattr(settings, "PAYMENT_CODE_LOCKOUT_SECONDS", 900))


def _digest(digits: str) -> str:
    return salted_hmac(_HMAC_SALT, digits, algorithm="sha256").hexdigest()


def _slot(number: int) -> str:
    return f"{number:0{SLOT_DIGITS}d}"


def _secret() -> str:
    return f"{secrets.randbelow(10**SECRET_DIGITS):0{SECRET_DIGITS}d}"


def _is_whole_amount(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def payment_code_normalize(code: str) -> str:
    """The 10 ASCII digits of a code as typed or scanned ("1234 567 890", "1234-567-890"), or
    PaymentCodeMalformed."""
    if not isinstance(code, str) or len(code) > _MAX_INPUT_LENGTH:
        raise PaymentCodeMalformed()
    digits = _SEPARATORS.sub("", code)
    if not _DIGITS.fullmatch(digits):
        raise PaymentCodeMalformed()
    return digits


def payment_code_format(code: str) -> str:
    """A code as people read it: "1234 567 890"."""
    digits = payment_code_normalize(code)
    return f"{digits[:4]} {digits[4:7]} {digits[7:]}"


def payment_code_qr_svg(code: str, *, scale: int = 8) -> str:
    """The code as a standalone QR code SVG document. It holds the 10 digits alone, in numeric
    mode: a merchant's scanner types them into the same field as a typed code."""
    digits = payment_code_normalize(code)
    out = io.BytesIO()
    segno.make_qr(digits, error="m").save(out, kind="svg", scale=scale, xmldecl=False)
    return out.getvalue().decode()


def _merchant_locked_until(
    wallet_id: int, merchant_id: int | None, now: datetime
) -> datetime | None:
    """When the merchant may again use the wallet's codes, if its wrong secrets on them have
    reached MAX_FAILED_ATTEMPTS within the cooling-off period: the instant the oldest of them
    that keeps the count at the limit leaves the period."""
    recent = (
        PaymentCodeFailure.objects.filter(
            wallet_id=wallet_id, merchant_id=merchant_id, at__gt=now - lockout_period()
        )
        .order_by("-at")
        .values_list("at", flat=True)[MAX_FAILED_ATTEMPTS - 1 : MAX_FAILED_ATTEMPTS]
    )
    return recent[0] + lockout_period() if recent else None


def _free_slot(now: datetime) -> str:
    """A random slot that no usable code holds, or PaymentCodeUnavailable when all are taken."""
    usable = PaymentCode.objects.filter(status=PaymentCode.Status.ACTIVE, expires_at__gt=now)
    # First a few random slots, looked up in the slot's index: while most slots are free one of
    # them is (all taken: 0.9 ** 32 = 3 % at nine slots in ten). Reading every usable code's
    # slot cost 1.2 ms with 1,850 of them (BENCHMARKS.md, issue 19 part 12).
    candidates = {_slot(secrets.randbelow(SLOTS)) for _attempt in range(_CANDIDATES)}
    free = sorted(
        candidates - set(usable.filter(slot__in=candidates).values_list("slot", flat=True))
    )
    if free:
        return secrets.choice(free)
    live = set(usable.values_list("slot", flat=True).distinct())
    free = [slot for slot in map(_slot, range(SLOTS)) if slot not in live]
    if not free:
        raise PaymentCodeUnavailable()
    return secrets.choice(free)


def payment_code_create(
    *, wallet, max_amount: int | None = None, currency: str = "EUR"
) -> tuple[PaymentCode, str]:
    """Create a one-time code for `wallet` and return it with its 10 digits, which are never
    stored nor shown again (payment_code_format() and payment_code_qr_svg() render them).

    A wallet holds at most MAX_USABLE_CODES_PER_WALLET usable codes: creating one more retires
    its oldest. Refused with WalletFrozen for a frozen wallet, PaymentCodeUnavailable when every
    slot is taken. Wrong codes sent by merchants never refuse a creation (see the module's
    docstring)."""
    if max_amount is not None:
        if not _is_whole_amount(max_amount) or max_amount <= 0:
            raise InvalidAmount(field="max_amount")
        if max_amount > MAX_AMOUNT:
            raise AmountTooLarge(field="max_amount")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise DomainError(
            _("The currency must be a three-letter ISO code, such as EUR."), field="currency"
        )
    with transaction.atomic():
        # The wallet's lock queues concurrent creations of one wallet: the cap of usable codes
        # holds, and a redemption (which takes the same lock) never sees half a creation.
        wallet = wallet_lock(wallet.pk)
        if wallet.is_frozen:
            raise WalletFrozen()
        now = timezone.now()
        oldest = list(
            PaymentCode.objects.filter(wallet=wallet, status=PaymentCode.Status.ACTIVE)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[MAX_USABLE_CODES_PER_WALLET - 1 :]
        )
        if oldest:
            PaymentCode.objects.filter(pk__in=oldest).update(status=PaymentCode.Status.EXPIRED)
        slot = _slot(secrets.randbelow(SLOTS))
        for _attempt in range(_CREATE_ATTEMPTS):
            digits = slot + _secret()
            # A code past its expiry still holds its slot until it is marked expired.
            PaymentCode.objects.filter(
                slot=slot, status=PaymentCode.Status.ACTIVE, expires_at__lte=now
            ).update(status=PaymentCode.Status.EXPIRED)
            try:
                with transaction.atomic():
                    payment_code = PaymentCode.objects.create(
                        wallet=wallet,
                        slot=slot,
                        digest=_digest(digits),
                        max_amount=max_amount,
                        currency=currency,
                        created_at=now,
                        expires_at=now + code_lifetime(),
                    )
            except IntegrityError:
                # The slot is held by a usable code (or was just taken by a concurrent creation,
                # on PostgreSQL after waiting for it to commit): pick among the free ones.
                slot = _free_slot(now)
                continue
            return payment_code, digits
        raise PaymentCodeUnavailable()


def payment_code_redeem(
    *,
    code: str,
    amount: int,
    currency: str,
    idempotency_key: str | None = None,
    merchant=None,
) -> PaymentCode:
    """Use a code to pay `amount` (minor units) in `currency`: check it and mark it used, exactly
    once however many callers try at the same time. Returns the used code; its `wallet` (locked
    until the caller's transaction ends) is the wallet to authorize against.

    A code is single use, and single attempt: once redeemed it stays used even when the
    authorization that redeemed it is then declined (no eligible aid, insufficient funds...);
    the beneficiary creates a new code. Only a rollback of the caller's transaction (an
    exception, not a recorded decline) gives it back.

    `idempotency_key`, already scoped by the caller like authorize()'s, makes a retry of the
    same request return the code it used instead of PaymentCodeUsed. `merchant` is who sends the
    code: its wrong secrets are counted against it, and lock it (not the wallet) out.

    Transactions: this never commits on its own (savepoints only) and may run inside the
    caller's atomic block. A wrong secret is counted, and may lock the merchant out, *before*
    PaymentCodeInvalid is raised: if the caller's transaction is rolled back, that count is lost
    and the guessing limit with it. Inside an atomic block, catch PaymentCodeError, let the block
    commit, and raise after it:

        with transaction.atomic():
            try:
                payment_code = payment_code_redeem(code=..., amount=..., currency=...)
            except PaymentCodeError as error:
                refused = error
            else:
                refused = None
                decision = authorize(wallet=payment_code.wallet, ...)
        if refused is not None:
            raise refused

    Refusals, each a PaymentCodeError with a stable code: payment_code_malformed,
    payment_code_invalid (no such code, or a wrong secret), payment_code_expired,
    payment_code_used, payment_code_locked (this merchant sent too many wrong secrets on the
    wallet's codes, details["retry_after"] in seconds; or a code cancelled by an earlier version),
    payment_code_currency_mismatch, payment_code_amount_exceeded; and invalid_amount.
    Only a wrong secret changes anything."""
    digits = payment_code_normalize(code)
    if not _is_whole_amount(amount) or amount <= 0:
        raise InvalidAmount(field="amount")
    # No savepoint: _redeem returns its refusals instead of raising them, so the block always
    # ends normally, and an unexpected error rolls the caller's transaction back anyway.
    with transaction.atomic(savepoint=False):
        outcome = _redeem(
            slot=digits[:SLOT_DIGITS],
            digest=_digest(digits),
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key or "",
            merchant_id=merchant.pk if merchant is not None else None,
        )
    # Raised outside the savepoint, so that a failure counted above is kept.
    if isinstance(outcome, PaymentCodeError):
        raise outcome
    return outcome


def _redeem(
    *,
    slot: str,
    digest: str,
    amount: int,
    currency: str,
    idempotency_key: str,
    merchant_id: int | None,
) -> PaymentCode | PaymentCodeError:
    live = (
        PaymentCode.objects.filter(slot=slot, status=PaymentCode.Status.ACTIVE)
        .values_list("pk", "wallet_id")
        .first()
    )
    if live is None:
        return _settled(slot, digest, idempotency_key) or PaymentCodeInvalid()
    pk, wallet_id = live
    wallet = wallet_lock(wallet_id)
    payment_code = (
        PaymentCode.objects.select_for_update()
        .filter(pk=pk, status=PaymentCode.Status.ACTIVE)
        .first()
    )
    if payment_code is None:  # used or cancelled while this call waited for the wallet
        return _settled(slot, digest, idempotency_key) or PaymentCodeInvalid()
    now = timezone.now()
    # Before the secret is compared, under the wallet's lock: a locked merchant learns nothing of
    # its guesses, and concurrent guesses are counted one after the other.
    locked_until = _merchant_locked_until(wallet_id, merchant_id, now)
    if locked_until is not None:
        return _merchant_locked(math.ceil((locked_until - now).total_seconds()))
    if not hmac.compare_digest(payment_code.digest, digest):
        # An older code of this slot typed again (a merchant's retry) is no guess.
        settled = _settled(slot, digest, idempotency_key)
        if settled is not None:
            return settled
        if payment_code.expires_at > now:  # a dead code cannot be guessed: no need to count
            _count_failure(payment_code, merchant_id, now)
        # The same answer as for a slot with no code, lockout or not: a guesser learns nothing.
        return PaymentCodeInvalid()
    refusal = _unfit(payment_code, amount, currency, now)
    if refusal is not None:
        return refusal
    payment_code.status = PaymentCode.Status.USED
    payment_code.used_at = now
    payment_code.redeemed_with = idempotency_key
    payment_code.save(update_fields=["status", "used_at", "redeemed_with"])
    payment_code.wallet = wallet
    return payment_code


def _unfit(
    payment_code: PaymentCode, amount: int, currency: str, now: datetime
) -> PaymentCodeError | None:
    """Why the right code cannot pay this amount now, or None."""
    if payment_code.expires_at <= now:
        return PaymentCodeExpired()
    if currency != payment_code.currency:
        return PaymentCodeCurrencyMismatch()
    if payment_code.max_amount is not None and amount > payment_code.max_amount:
        return PaymentCodeAmountExceeded(max_amount=payment_code.max_amount)
    return None


def payment_code_fits(
    payment_code: PaymentCode, *, code: str, amount: int, currency: str, now: datetime
) -> bool:
    """Whether `code` (normalised) is this usable code's and may pay `amount` in `currency` now:
    the one case a fast path may redeem by itself (see wallet/hot_path.py). Every other case,
    a refusal, a wrong secret to count, a retry, is payment_code_redeem()'s."""
    return (
        _is_whole_amount(amount)
        and amount > 0
        and hmac.compare_digest(payment_code.digest, _digest(code))
        and _unfit(payment_code, amount, currency, now) is None
    )


def payment_code_used_sql(
    payment_code: PaymentCode, *, idempotency_key: str, now: datetime
) -> tuple[str, list[object]]:
    """The UPDATE that marks a code used, as payment_code_redeem() does, for a caller that
    sends it with its other writes (core/one_statement.py); the caller holds the wallet's lock."""
    payment_code.status = PaymentCode.Status.USED
    payment_code.used_at = now
    payment_code.redeemed_with = idempotency_key
    return (
        "UPDATE wallet_paymentcode SET status = %s, used_at = %s, redeemed_with = %s WHERE id = %s",
        [
            PaymentCode.Status.USED,
            PaymentCode._meta.get_field("used_at").get_db_prep_save(now, connection),
            idempotency_key,
            payment_code.pk,
        ],
    )


def _settled(slot: str, digest: str, idempotency_key: str) -> PaymentCode | PaymentCodeError | None:
    """What to answer for a code with these digits that is no longer usable: the code itself for
    a retry of the request that used it, else why it is refused; None if there is no such code."""
    previous = (
        PaymentCode.objects.filter(slot=slot, digest=digest)
        .exclude(status=PaymentCode.Status.ACTIVE)
        .order_by("-created_at", "-pk")
        .first()
    )
    if previous is None:
        return None
    if previous.status == PaymentCode.Status.USED:
        if idempotency_key and previous.redeemed_with == idempotency_key:
            return previous
        return PaymentCodeUsed()
    if previous.status == PaymentCode.Status.EXPIRED:
        return PaymentCodeExpired()
    return PaymentCodeLocked(
        _(
            "This payment code was cancelled after too many wrong attempts. The beneficiary can "
            "create a new one in a few minutes."
        )
    )


def _merchant_locked(seconds: int) -> PaymentCodeLocked:
    minutes = math.ceil(seconds / 60)
    return PaymentCodeLocked(
        ngettext_lazy(
            "Too many wrong payment codes were sent from this shop for this person. Try again in "
            "%(minutes)d minute; the person can still pay elsewhere.",
            "Too many wrong payment codes were sent from this shop for this person. Try again in "
            "%(minutes)d minutes; the person can still pay elsewhere.",
            "minutes",
        )
        % {"minutes": minutes},
        retry_after=seconds,
    )


def _count_failure(payment_code: PaymentCode, merchant_id: int | None, now: datetime) -> None:
    """Record a wrong secret on a usable code, against its wallet and the merchant that sent it.
    The caller holds the wallet's lock."""
    PaymentCode.objects.filter(pk=payment_code.pk).update(failed_attempts=F("failed_attempts") + 1)
    PaymentCodeFailure.objects.create(
        payment_code=payment_code, wallet_id=payment_code.wallet_id, merchant_id=merchant_id, at=now
    )
