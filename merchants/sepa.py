"""Bank details of merchants and the SEPA credit transfer file (pain.001.001.03) that pays them.

No models here: the validators are used by the Merchant model itself, and `pain001` only turns
payments into a file, validated against the schema sepaxml ships. The service that records the
file and marks payouts sent is `merchants.settlement.sepa_file_build`."""

import re
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN
from sepaxml import SepaTransfer

# Defined on the first floor, where funders' bank details use them too; named here as before.
from core.validators import validate_bic, validate_iban  # noqa: F401

SCHEMA = "pain.001.001.03"
STRIPE_ACCOUNT_RE = re.compile(r"acct_[A-Za-z0-9]{8,64}")


def iban_compact(value: str) -> str:
    """An IBAN as banks store it: no spaces, upper case. Raises ValueError when invalid."""
    return IBAN(value).compact


def validate_stripe_account_id(value: str) -> None:
    if not STRIPE_ACCOUNT_RE.fullmatch(value):
        raise ValidationError(
            _("A connected Stripe account id looks like acct_1Nv0FGQ9RKHgCVdK."),
            code="invalid_stripe_account",
        )


@dataclass(frozen=True)
class SepaPayment:
    name: str
    iban: str
    bic: str
    amount: int  # cents
    currency: str
    end_to_end_id: str  # the settlement batch's reference: the merchant sees it on its statement
    description: str


def debtor_configured() -> bool:
    return bool(settings.SEPA_DEBTOR_NAME and settings.SEPA_DEBTOR_IBAN)


def pain001(*, payments: list[SepaPayment], execution_date: date) -> tuple[bytes, str]:
    """One pain.001 file paying every payment from the operator's account (SEPA_DEBTOR_*), in a
    single batch; returns the XML and its message id. Raises sepaxml's ValidationError if the
    file does not validate against the schema."""
    config = {
        "name": settings.SEPA_DEBTOR_NAME,
        "IBAN": iban_compact(settings.SEPA_DEBTOR_IBAN),
        "batch": True,
        "currency": "EUR",
    }
    if settings.SEPA_DEBTOR_BIC:
        config["BIC"] = settings.SEPA_DEBTOR_BIC
    transfer = SepaTransfer(config, schema=SCHEMA, clean=True)
    for payment in payments:
        entry = {
            "name": payment.name,
            "IBAN": payment.iban,
            "amount": payment.amount,
            "currency": payment.currency,
            "execution_date": execution_date,
            "description": payment.description,
            "endtoend_id": payment.end_to_end_id,
        }
        if payment.bic:
            entry["BIC"] = payment.bic
        transfer.add_payment(entry)
    return transfer.export(validate=True), transfer.msg_id
