"""The merchant API's errors as its schema documents them: every stable `error.code` it can
answer, each with what it means (the enum of ErrorDetail.code), and the error statuses each kind
of operation can answer. tests/merchant_api/test_error_codes.py checks that every domain error
the API can raise has its code here."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.errors import (
    AmountTooLarge,
    DomainError,
    ExceedsHoldAmount,
    ExceedsRefundable,
    IdempotencyConflict,
    InvalidAmount,
    InvalidState,
    PaymentCodeAmountExceeded,
    PaymentCodeCurrencyMismatch,
    PaymentCodeExpired,
    PaymentCodeInvalid,
    PaymentCodeLocked,
    PaymentCodeMalformed,
    PaymentCodeUsed,
)
from merchant_api.code_guessing import (
    MerchantCodeGuessingThrottled,
    PlatformCodeGuessingThrottled,
)
from merchant_api.idempotency import IdempotencyKeyRequired, InvalidIdempotencyKey
from merchants.acceptors import CardAcceptorTaken
from merchants.payments import AuthorizationAlreadyCaptured, AuthorizationNotCapturable
from merchants.services import ApiKeyLimitReached, MerchantNotActive


class CardNotAccepted(DomainError):
    code = "card_not_accepted"
    default_message = _(
        "Cards are not accepted by the merchant API: send the payment_code shown in the "
        "beneficiary's app. Cards pay through the card network."
    )

    def __init__(self):
        super().__init__(field="card")


class LiveKeyNeedsLiveKey(DomainError):
    code = "live_key_requires_live_key"
    status = 403
    default_message = _("A test key creates only test keys: create a live key with a live key.")

    def __init__(self):
        super().__init__(field="mode")


class BasketTotalMismatch(DomainError):
    code = "basket_total_mismatch"
    default_message = _("The basket lines must add up to the amount.")

    def __init__(self):
        super().__init__(field="lines")


# The domain errors the merchant API answers as they are: their code, described by their
# message (the schema is drawn in English, core/api_docs.py).
DOMAIN_ERRORS = [
    InvalidAmount,
    AmountTooLarge,
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    IdempotencyConflict,
    PaymentCodeMalformed,
    PaymentCodeInvalid,
    PaymentCodeExpired,
    PaymentCodeUsed,
    PaymentCodeAmountExceeded,
    PaymentCodeCurrencyMismatch,
    PaymentCodeLocked,
    MerchantCodeGuessingThrottled,
    PlatformCodeGuessingThrottled,
    AuthorizationNotCapturable,
    AuthorizationAlreadyCaptured,
    ExceedsHoldAmount,
    ExceedsRefundable,
    InvalidState,
    MerchantNotActive,
    ApiKeyLimitReached,
    CardAcceptorTaken,
    CardNotAccepted,
    LiveKeyNeedsLiveKey,
    BasketTotalMismatch,
]

# The codes of the API's edge (core/api_errors.py): DRF's errors and the exception handler's,
# described for the schema only (its texts are in English whoever fetches it).
EDGE_CODES = {
    "invalid_request": "A field, header or query parameter is missing or not valid: `field` "
    "names it.",
    "malformed_request": "The body is not valid JSON.",
    "request_too_large": "The request is too large.",
    "unsupported_media_type": "The body is not sent as application/json.",
    "not_acceptable": "The Accept header asks for a format this operation does not answer.",
    "authentication_required": "No API key was sent: Authorization: Bearer <key>.",
    "authentication_failed": "The API key is not valid or was revoked.",
    "not_found": "No such object among the key's merchant's objects of the key's mode.",
    "method_not_allowed": "This path does not take this HTTP method.",
    "rate_limited": "Too many requests with this key: retry after Retry-After seconds.",
    "service_unavailable": "The service is briefly unavailable: retry with the same key.",
    "internal_error": "An unexpected error occurred (a bug on our side).",
}


def error_codes() -> list[tuple[str, str]]:
    """(code, description) of every code the merchant API can answer, each once."""
    codes = {error.code: error.default_message for error in DOMAIN_ERRORS} | EDGE_CODES
    return list(codes.items())


# The error shape of the merchant API, its code an enum. Its own components (not core's
# ErrorOutput, which the app API shares): the two APIs answer different codes. (Comments, not
# docstrings: a serializer's docstring is its description in the schema.)
class MerchantErrorDetail(serializers.Serializer):
    code = serializers.ChoiceField(choices=error_codes())
    message = serializers.CharField(help_text="In the request's language (Accept-Language).")
    field = serializers.CharField(
        allow_null=True,
        help_text="The request's field, header or query parameter at fault, as the request "
        "names it (amount, payment_code, Idempotency-Key, limit); null when none is.",
    )


class MerchantError(serializers.Serializer):
    error = MerchantErrorDetail()


# The error statuses each kind of operation can answer, and only those: a generated client
# makes a type per documented status. Every call with a key can meet 401 (no valid key), 403
# (the merchant is not active), 429 (rate limit) and 503 (briefly unavailable).
READ_ERRORS = {status: MerchantError for status in (401, 403, 429, 503)}
LIST_ERRORS = {400: MerchantError, **READ_ERRORS}  # a filter, limit or cursor out of bounds
DETAIL_ERRORS = {404: MerchantError, **READ_ERRORS}
# A POST: its body (400, 413, 415), the object it acts on (404), a state or key conflict (409),
# an amount past what the object allows (422).
ERRORS = {status: MerchantError for status in (400, 404, 409, 413, 415, 422)} | READ_ERRORS
# Authorizing: a payment code past its validity is gone (410).
AUTHORIZE_ERRORS = {**ERRORS, 410: MerchantError}
# Applying needs no key: no 401 or 403, and no object to find.
APPLICATION_ERRORS = {status: MerchantError for status in (400, 409, 413, 415, 429, 503)}
