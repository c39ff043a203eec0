"""Settlement: what each merchant is owed, gathered into batches, and the payouts that pay it.

A batch takes every capture and refund on the merchant's payable account that no batch holds
yet, up to an instant (exclusive): one line per ledger transfer, and a transfer is in one batch
at most (a unique index on the line's transfer). Its net is the captures minus the refunds, plus
the previous batch's net when that one was negative (refunds of payments already paid out): a
negative net is carried into the next batch as a negative line, and pays nothing.

A positive net leaves the payable in one ledger transfer of kind PAYOUT to the currency's
payout account (`payout:<currency>`), with metadata {"merchant", "batch"}: the money is then in
transit. The bank's or Stripe's confirmation is recorded on the Payout row, not in the ledger.

Building is serialised per merchant by locking the merchant's row, and a period is built once:
(merchant, currency, period_end) is unique. A suspended merchant is still paid for what it
captured: suspension stops new payments, not settlement."""

import logging
from datetime import date, datetime, time

import stripe
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidState
from core.stripe import stripe_client
from core.time import PARIS
from ledger.models import Account, Entry, Transfer
from ledger.services import account_get_or_create, transfer_post
from merchants.models import Merchant
from merchants.models.settlement import Payout, SepaFile, SettlementBatch, SettlementLine
from merchants.sepa import SepaPayment, debtor_configured, iban_compact, pain001

logger = logging.getLogger(__name__)

SETTLED_KINDS = (Transfer.Kind.CAPTURE, Transfer.Kind.REFUND)


class SettlementPeriodClosed(InvalidState):
    code = "settlement_period_closed"


# --- batches ----------------------------------------------------------------------------------


def settlement_until(now: datetime | None = None) -> datetime:
    """The end of the last whole day in Paris: today at midnight, Paris time."""
    today = timezone.localtime(now or timezone.now(), PARIS).date()
    return datetime.combine(today, time(0), tzinfo=PARIS)


def _unsettled(until: datetime) -> models.QuerySet[Entry]:
    return Entry.objects.filter(
        account__kind=Account.Kind.MERCHANT_PAYABLE,
        transfer__kind__in=SETTLED_KINDS,
        transfer__created_at__lt=until,
        transfer__settlement_line__isnull=True,
    )


def settlement_due(*, until: datetime) -> list[tuple[int, str]]:
    """(merchant id, currency) of every merchant with captures or refunds no batch holds."""
    return list(
        _unsettled(until)
        .values_list("account__merchant", "transfer__currency")
        .distinct()
        .order_by("account__merchant", "transfer__currency")
    )


def payout_account(currency: str) -> Account:
    return account_get_or_create(
        code=f"payout:{currency}",
        name=f"Payouts in transit ({currency})",
        kind=Account.Kind.PAYOUT,
        currency=currency,
        guarded=False,
    )


def _decisions(transfer_ids: list[int]) -> dict[int, int | None]:
    """The authorization each capture or refund belongs to, for the statement."""
    rows = Transfer.objects.filter(pk__in=transfer_ids).values_list(
        "pk",
        "pending_transfer__decision_hold__decision",
        "refund_of__pending_transfer__decision_hold__decision",
    )
    return {pk: captured or refunded for pk, captured, refunded in rows}


def settlement_close(*, merchant, currency: str, until: datetime) -> SettlementBatch | None:
    """Close the merchant's batch ending at `until` (exclusive) and move its net to payout.
    Returns the batch, the same one when called again for the same period, or None when there
    is nothing new to settle (a negative carry then waits for the next movement)."""
    if timezone.is_naive(until):
        raise InvalidState(message="The end of a settlement period needs a time zone.")
    with transaction.atomic():
        merchant = (
            Merchant.objects.select_for_update(of=("self",))
            .select_related("payable_account")
            .get(pk=merchant.pk)
        )
        batches = SettlementBatch.objects.filter(merchant=merchant, currency=currency)
        existing = batches.filter(period_end=until).first()
        if existing is not None:
            return existing
        previous = batches.order_by("-period_end").first()
        if previous is not None and previous.period_end > until:
            raise SettlementPeriodClosed(
                message="A later settlement batch is already closed for this merchant.",
                field="until",
            )
        entries = list(
            _unsettled(until)
            .filter(account=merchant.payable_account, transfer__currency=currency)
            .select_related("transfer")
            .order_by("transfer__created_at", "transfer_id")
        )
        if not entries:
            return None
        carried = previous.net if previous is not None and previous.net < 0 else 0
        captured = sum(entry.amount for entry in entries if entry.amount > 0)
        refunded = -sum(entry.amount for entry in entries if entry.amount < 0)
        batch = SettlementBatch.objects.create(
            merchant=merchant,
            currency=currency,
            period_start=previous.period_end if previous is not None else None,
            period_end=until,
            captured=captured,
            refunded=refunded,
            carried=carried,
            net=captured - refunded + carried,
        )
        lines = []
        if carried:
            lines.append(
                SettlementLine(
                    batch=batch,
                    kind=SettlementLine.Kind.CARRIED,
                    amount=carried,
                    carried_from=previous,
                    occurred_at=previous.period_end,
                )
            )
        decisions = _decisions([entry.transfer_id for entry in entries])
        payment, refund = SettlementLine.Kind.PAYMENT, SettlementLine.Kind.REFUND
        lines += [
            SettlementLine(
                batch=batch,
                kind=payment if entry.amount > 0 else refund,
                amount=entry.amount,
                transfer=entry.transfer,
                decision_id=decisions.get(entry.transfer_id),
                occurred_at=entry.transfer.created_at,
            )
            for entry in entries
        ]
        SettlementLine.objects.bulk_create(lines)
        if batch.net > 0:
            _payout_create(batch=batch, merchant=merchant)
        return batch


def _payout_create(*, batch: SettlementBatch, merchant) -> Payout:
    transfer = transfer_post(
        kind=Transfer.Kind.PAYOUT,
        currency=batch.currency,
        legs=[(merchant.payable_account, -batch.net), (payout_account(batch.currency), batch.net)],
        idempotency_key=f"payout:{batch.pk}",
        metadata={"merchant": merchant.pk, "batch": batch.pk},
    )
    return Payout.objects.create(
        batch=batch,
        transfer=transfer,
        method=Payout.Method.STRIPE if merchant.stripe_account_id else Payout.Method.SEPA,
        amount=batch.net,
        currency=batch.currency,
    )


def settlement_close_due(*, until: datetime) -> list[SettlementBatch]:
    """Close a batch for every merchant with something to settle. One merchant's failure is
    logged and does not hold back the others' money."""
    batches = []
    for merchant_id, currency in settlement_due(until=until):
        try:
            batch = settlement_close(
                merchant=Merchant(pk=merchant_id), currency=currency, until=until
            )
        except Exception:
            logger.exception("settlement of merchant %s in %s failed", merchant_id, currency)
            continue
        if batch is not None:
            batches.append(batch)
    return batches


# --- payouts ----------------------------------------------------------------------------------


def sepa_file_build(*, payouts, execution_date: date | None = None) -> SepaFile:
    """One pain.001 file paying these SEPA payouts (pending, to merchants with an IBAN), each
    for the ledger's amount with the batch reference as end-to-end id; the payouts are then
    sent. Raises InvalidState, and builds nothing, if one of them cannot be paid this way."""
    if not debtor_configured():
        raise InvalidState(
            message=_("The platform's bank account is not set up (SEPA_DEBTOR_NAME, _IBAN)."),
            field="payouts",
        )
    with transaction.atomic():
        locked = list(
            Payout.objects.select_for_update(of=("self",))
            .select_related("batch__merchant", "transfer")
            .filter(pk__in=[payout.pk for payout in payouts])
            .order_by("pk")
        )
        if not locked:
            raise InvalidState(message=_("Choose at least one payout."), field="payouts")
        for payout in locked:
            merchant = payout.batch.merchant
            if payout.method != Payout.Method.SEPA or payout.status != Payout.Status.PENDING:
                raise InvalidState(
                    message=_("Payout %(ref)s is not a SEPA transfer waiting to be sent.")
                    % {"ref": payout.batch.reference},
                    field="payouts",
                )
            if not merchant.iban:
                raise InvalidState(
                    message=_("%(merchant)s has no IBAN: add it to the merchant first.")
                    % {"merchant": merchant},
                    field="payouts",
                )
            if payout.currency != "EUR":
                raise InvalidState(message=_("SEPA transfers are in euros only."), field="payouts")
        execution_date = execution_date or timezone.localdate()
        content, message_id = pain001(
            payments=[
                SepaPayment(
                    name=payout.batch.merchant.legal_name,
                    iban=iban_compact(payout.batch.merchant.iban),
                    bic=payout.batch.merchant.bic,
                    amount=payout.transfer.amount,
                    currency=payout.currency,
                    end_to_end_id=payout.batch.reference,
                    description=f"Aidwallet {payout.batch.reference}",
                )
                for payout in locked
            ],
            execution_date=execution_date,
        )
        sepa_file = SepaFile.objects.create(
            message_id=message_id,
            content=content.decode(),
            count=len(locked),
            total=sum(payout.transfer.amount for payout in locked),
            currency="EUR",
            execution_date=execution_date,
        )
        now = timezone.now()
        for payout in locked:
            payout.status = Payout.Status.SENT
            payout.sepa_file = sepa_file
            payout.destination = payout.batch.merchant.iban
            payout.sent_at = now
            payout.save(update_fields=["status", "sepa_file", "destination", "sent_at"])
        return sepa_file


def stripe_payout_send(*, payout: Payout) -> Payout:
    """Pay a Stripe payout by a transfer to the merchant's connected account. The idempotency
    key is the batch's, so a retry (ours or the library's) makes one transfer. A transfer that
    Stripe accepts is in the merchant's Stripe balance at once: the payout is paid. A network
    failure leaves it pending for the next try; a refusal marks it failed."""
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update(of=("self",))
            .select_related("batch__merchant")
            .get(pk=payout.pk)
        )
        if payout.method != Payout.Method.STRIPE:
            raise InvalidState(message="This payout is not a Stripe transfer.", field="payout")
        if payout.status != Payout.Status.PENDING:
            return payout
        batch = payout.batch
        account = batch.merchant.stripe_account_id
        if not account:
            return _payout_failed(payout, _("The merchant has no connected Stripe account."))
        try:
            transfer = stripe_client().v1.transfers.create(
                {
                    "amount": payout.amount,
                    "currency": payout.currency.lower(),
                    "destination": account,
                    "transfer_group": batch.reference,
                    "metadata": {"batch": batch.reference},
                },
                {"idempotency_key": f"payout:{batch.pk}"},
            )
        except stripe.APIConnectionError:
            logger.warning("Stripe unreachable for payout %s: left pending", payout.pk)
            raise
        except stripe.StripeError as error:
            return _payout_failed(payout, str(error.user_message or error))
        now = timezone.now()
        payout.status = Payout.Status.PAID
        payout.stripe_transfer_id = transfer.id
        payout.destination = account
        payout.sent_at = payout.paid_at = now
        payout.save(
            update_fields=["status", "stripe_transfer_id", "destination", "sent_at", "paid_at"]
        )
        return payout


def _payout_failed(payout: Payout, reason) -> Payout:
    payout.status = Payout.Status.FAILED
    payout.failure_reason = str(reason)[:300]
    payout.save(update_fields=["status", "failure_reason"])
    return payout


def payout_mark_paid(*, payout: Payout) -> Payout:
    """The bank confirmed a SEPA transfer."""
    if payout.status != Payout.Status.SENT:
        raise InvalidState(message=_("Only a sent payout can be confirmed paid."), field="status")
    payout.status = Payout.Status.PAID
    payout.paid_at = timezone.now()
    payout.save(update_fields=["status", "paid_at"])
    return payout


def payout_mark_failed(*, payout: Payout, reason: str) -> Payout:
    """The bank returned a transfer (closed account, wrong name...). The money stays in
    transit until the payout is sent again."""
    if payout.status not in (Payout.Status.SENT, Payout.Status.PENDING):
        raise InvalidState(message=_("Only a payout not yet paid can fail."), field="status")
    return _payout_failed(payout, reason)


def payout_retry(*, payout: Payout) -> Payout:
    """Send a failed payout again, in the next SEPA file or Stripe run, once the merchant's
    details are corrected."""
    if payout.status != Payout.Status.FAILED:
        raise InvalidState(message=_("Only a failed payout can be sent again."), field="status")
    payout.status = Payout.Status.PENDING
    payout.save(update_fields=["status"])
    return payout


def stripe_payouts_pending() -> list[int]:
    return list(
        Payout.objects.filter(
            method=Payout.Method.STRIPE, status=Payout.Status.PENDING
        ).values_list("pk", flat=True)
    )
