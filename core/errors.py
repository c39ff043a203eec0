"""Domain errors. Each has a stable `code` that clients and tests rely on, an HTTP status for the
API edge, and a message in plain words (translated). The DRF exception handler in
config/errors.py turns them into {"error": {"code", "message", "field"}}."""

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class DomainError(Exception):
    code = "invalid_request"
    status = 400
    default_message = _("The request is not valid.")

    def __init__(
        self, message: "StrOrPromise | None" = None, *, field: str | None = None, **details: object
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.field = field
        self.details = details
        super().__init__(str(self.message))


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = _("The amount must be a whole number of cents, greater than zero.")


class AmountTooLarge(DomainError):
    code = "amount_too_large"
    default_message = _("The amount is larger than the platform accepts.")


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    default_message = _("The currency does not match the account's currency.")


class UnknownAccount(DomainError):
    code = "unknown_account"
    status = 404
    default_message = _("This account does not exist.")


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    status = 402
    default_message = _("There is not enough money available for this operation.")


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    status = 409
    default_message = _(
        "This idempotency key was already used with different parameters. "
        "Use a new key for a new operation."
    )


class HoldAlreadyResolved(DomainError):
    status = 409
    MESSAGES = {
        "posted": _("This hold was already captured."),
        "voided": _("This hold was already released."),
        "expired": _("This hold has expired: its money was released."),
    }

    def __init__(self, state: str) -> None:
        self.code = f"hold_already_{state}"
        super().__init__(self.MESSAGES[state])


class ExceedsHoldAmount(DomainError):
    code = "exceeds_hold_amount"
    status = 422
    default_message = _("The amount is larger than what the hold reserved.")


class ExceedsRefundable(DomainError):
    code = "exceeds_refundable_amount"
    status = 422
    default_message = _("The amount is larger than what is left to refund.")


class InvalidState(DomainError):
    code = "invalid_state"
    status = 409
    default_message = _("This operation is not possible in the object's current state.")


class WalletFrozen(DomainError):
    code = "wallet_frozen"
    status = 409
    default_message = _(
        "This wallet is frozen: it cannot be used until the organisation that gives the aid "
        "unfreezes it."
    )


class PaymentCodeError(DomainError):
    """A payment code was refused. Catch this base class to handle every refusal at once."""

    code = "payment_code_invalid"
    status = 404
    default_message = _("This payment code is not valid. Please check it, or ask for a new one.")

    def __init__(
        self,
        message: "StrOrPromise | None" = None,
        *,
        field: str | None = "payment_code",
        **details: object,
    ) -> None:
        super().__init__(message, field=field, **details)


class PaymentCodeMalformed(PaymentCodeError):
    code = "payment_code_malformed"
    status = 400
    default_message = _("A payment code has 10 digits, such as 1234 567 890.")


class PaymentCodeInvalid(PaymentCodeError):
    code = "payment_code_invalid"


class PaymentCodeExpired(PaymentCodeError):
    code = "payment_code_expired"
    status = 410
    default_message = _("This payment code has expired. Please ask for a new one.")


class PaymentCodeUsed(PaymentCodeError):
    code = "payment_code_used"
    status = 409
    default_message = _("This payment code was already used. Please ask for a new one.")


class PaymentCodeAmountExceeded(PaymentCodeError):
    code = "payment_code_amount_exceeded"
    status = 422
    default_message = _("The amount is larger than the maximum this payment code allows.")

    def __init__(
        self,
        message: "StrOrPromise | None" = None,
        *,
        field: str | None = "amount",
        **details: object,
    ) -> None:
        super().__init__(message, field=field, **details)


class PaymentCodeCurrencyMismatch(PaymentCodeError):
    code = "payment_code_currency_mismatch"
    status = 422
    default_message = _("This payment code is for another currency.")

    def __init__(
        self,
        message: "StrOrPromise | None" = None,
        *,
        field: str | None = "currency",
        **details: object,
    ) -> None:
        super().__init__(message, field=field, **details)


class PaymentCodeLocked(PaymentCodeError):
    """The merchant sent too many wrong codes on this wallet's codes and is refused on them until
    the cooling-off period ends (`details["retry_after"]`, in seconds); or a code was cancelled
    by the wallet-wide lockout of earlier versions."""

    code = "payment_code_locked"
    status = 429
    default_message = _(
        "Payment codes are blocked for a few minutes after too many wrong attempts. "
        "Please try again later."
    )


class PaymentCodeUnavailable(PaymentCodeError):
    code = "payment_code_unavailable"
    status = 503
    default_message = _("No payment code can be created right now. Please try again in a minute.")

    def __init__(
        self, message: "StrOrPromise | None" = None, *, field: str | None = None, **details: object
    ) -> None:
        super().__init__(message, field=field, **details)
