"""Domain errors. Each has a stable `code` that clients and tests rely on, an HTTP status for the
API edge, and a message in plain words (translated). The DRF exception handler in
config/errors.py turns them into {"error": {"code", "message", "field"}}."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "invalid_request"
    status = 400
    default_message = _("The request is not valid.")

    def __init__(self, message=None, *, field: str | None = None, **details):
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


class UnknownInstrument(DomainError):
    code = "unknown_instrument"
    status = 404
    default_message = _("No card or payment code matches this reference.")


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

    def __init__(self, state: str):
        self.code = f"hold_already_{state}"
        super().__init__(_("This hold is already %(state)s.") % {"state": state})


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
