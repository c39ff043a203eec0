"""Taking a payment at the till and what follows it: the answer in big words, the day's
payments and takings, capture, reversal and refund (each confirmed), the receipt. Every action
is a call to merchants.payments, the services of the merchant API: one set of rules."""

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from core.money import format_money
from engine.codes import merchant_message, merchant_partial_message
from merchants.payments import (
    basket_data,
    operation_committed,
    payment_authorize,
    payment_capture,
    payment_refund,
    payment_reverse,
)
from merchants.selectors import capture_status
from shop.forms import PRODUCT_NAMES, OperationForm, PaymentForm
from shop.selectors import payment_get, payment_parts, payments_today, takings_today
from shop.services import capture_later
from shop.views.access import member_required
from wallet.models.decisions import Decision

# What the cashier does after a refusal, by the kind of reason (the merchant message says why,
# in words that reveal nothing private).
_WHAT_TO_DO = {
    "insufficient_funds": _("Ask the customer for another means of payment for this amount."),
    "no_aid_available": _("Ask the customer for another means of payment for this amount."),
    "limit_exceeded": _("Try a smaller amount, or ask for another means of payment."),
    "merchant_suspended": _("Contact the platform before taking aid payments again."),
}
_WHAT_TO_DO_DEFAULT = _(
    "Ask the customer to pay another way. Their app tells them why and where this aid can be used."
)


@member_required
def pay(request):
    merchant = request.member.merchant
    form = PaymentForm(request.POST or None, initial={"attempt": uuid.uuid4()})
    if request.method == "POST" and form.is_valid():
        try:
            decision = payment_authorize(
                merchant=merchant,
                amount=form.cleaned_data["amount"],
                currency="EUR",
                payment_code=form.cleaned_data["code"],
                # A till takes the part the aid covers and collects the rest another way.
                partial_approval_allowed=True,
                capture=not capture_later(merchant),
                merchant_reference="till",
                idempotency_key=f"till:{form.cleaned_data['attempt']}",
                lines=form.cleaned_data["lines"],
            )
        except DomainError as error:
            # The services name the fields as this form does (amount, code).
            form.add_error(error.field if error.field in form.fields else None, str(error.message))
        else:
            return redirect("shop:payment", reference=decision.reference)
    if form.errors:
        # A new attempt for the next try: the failed one may have burnt nothing, but a typo
        # corrected is another payment.
        form.data = form.data.copy()
        form.data["attempt"] = str(uuid.uuid4())
        # A payment code is a secret: never written back into a page (scan or type it again).
        form.data["code"] = ""
    return render(
        request,
        "shop/pay.html",
        {"form": form, "active": merchant.status == merchant.Status.APPROVED},
        status=400 if form.errors else 200,
    )


def _payment(request, reference: str) -> Decision:
    decision = payment_get(merchant=request.member.merchant, reference=reference)
    if decision is None:
        raise Http404
    return decision


def _answer(decision: Decision) -> dict:
    money = format_money
    parts = [
        {
            "aid": p.aid,
            "funder": p.funder,
            "money": money(p.amount, decision.currency),
            "refunded": p.refunded and money(p.refunded, decision.currency),
        }
        for p in payment_parts(decision)
    ]
    answer = {
        "status": decision.status,
        "parts": parts,
        "amount": money(decision.amount, decision.currency),
        "approved": money(decision.approved_amount, decision.currency),
        "refunded": money(decision.amount_refunded, decision.currency),
    }
    if 0 < decision.amount_captured < decision.approved_amount:
        # Captured for less than approved: the cashier and the receipt show what was taken, and
        # that the rest went back to the person's aid, not the approval's figure.
        answer["captured"] = money(decision.amount_captured, decision.currency)
        answer["released"] = money(
            decision.approved_amount - decision.amount_captured, decision.currency
        )
    if decision.status == Decision.Status.PARTIALLY_APPROVED:
        answer["rest"] = money(decision.amount - decision.approved_amount, decision.currency)
        answer["message"] = merchant_partial_message(
            approved=decision.approved_amount, amount=decision.amount, currency=decision.currency
        )
    elif decision.status == Decision.Status.DECLINED:
        answer["message"] = merchant_message(decision.reason)
        answer["what_to_do"] = _WHAT_TO_DO.get(decision.reason, _WHAT_TO_DO_DEFAULT)
    basket = basket_data(decision)
    if basket is not None:
        # The basket as the API's answer and the webhooks give it, in the cashier's words.
        answer["basket"] = {
            "covered": money(basket["eligible_amount"], decision.currency),
            "lines": [
                {
                    "products": PRODUCT_NAMES[line["category"]],
                    "amount": money(line["amount"], decision.currency),
                    "paid": line["paid_amount"] and money(line["paid_amount"], decision.currency),
                    "rest": line["rest_amount"] and money(line["rest_amount"], decision.currency),
                }
                for line in basket["lines"]
            ],
        }
    return answer


def _operations(decision: Decision) -> dict:
    """What can still be done to a payment, and up to how much."""
    state = capture_status(decision)
    refundable = decision.amount_captured - decision.amount_refunded
    return {
        "state": state,
        "capture": state == "requires_capture",
        "reverse": state == "requires_capture",
        "refund": refundable > 0,
        "held": format_money(decision.amount_held, decision.currency),
        "refundable": format_money(refundable, decision.currency),
    }


@member_required
def payment(request, reference: str):
    decision = _payment(request, reference)
    return render(
        request,
        "shop/payment.html",
        {
            "decision": decision,
            "answer": _answer(decision),
            "ops": _operations(decision),
            "fresh": request.GET.get("from") != "list",
        },
    )


# Each action given the one statement its writes may go in, as the merchant API's views call
# them: a capture's and a refund's take it, a reversal writes through the ORM there too.
_OPERATIONS = {
    "capture": (
        lambda writes, **operation: payment_capture(writes=writes, **operation),
        _("Capture this payment"),
        _("Payment captured: %(amount)s."),
    ),
    "reverse": (
        lambda _writes, **operation: payment_reverse(**operation),
        _("Cancel this payment"),
        _("Payment cancelled: %(amount)s."),
    ),
    "refund": (
        lambda writes, **operation: payment_refund(writes=writes, **operation),
        _("Refund this payment"),
        _("Refunded: %(amount)s."),
    ),
}


@member_required
def operation(request, reference: str, action: str):
    """Capture, cancel (reverse) or refund: the page asks to confirm, with the amount (all by
    default, less for a part), and the POST does it through the merchant API's services,
    committed as the API commits them (on PostgreSQL, a capture or refund in one statement)."""
    if action not in _OPERATIONS:
        raise Http404
    service, title, done = _OPERATIONS[action]
    decision = _payment(request, reference)
    ops = _operations(decision)
    if not ops[action]:
        messages.error(request, _("This can no longer be done to this payment."))
        return redirect("shop:payment", reference=reference)
    form = OperationForm(request.POST or None, initial={"attempt": uuid.uuid4()})
    if action == "refund":
        form.fields["amount"].required = True
    if request.method == "POST" and form.is_valid():
        amount = form.cleaned_data["amount"]
        key = f"till:{action}:{form.cleaned_data['attempt']}"
        try:
            result = operation_committed(
                lambda writes: service(
                    writes,
                    merchant=request.member.merchant,
                    decision=decision,
                    amount=amount,
                    idempotency_key=key,
                )
            )
        except DomainError as error:
            form.add_error("amount", str(error.message))
        else:
            messages.success(
                request, done % {"amount": format_money(result.amount, decision.currency)}
            )
            return redirect("shop:payment", reference=reference)
    return render(
        request,
        "shop/operation.html",
        {"decision": decision, "ops": ops, "form": form, "action": action, "title": title},
        status=400 if form.errors else 200,
    )


@member_required
def today(request):
    merchant = request.member.merchant
    payments = [
        {
            "decision": d,
            "state": capture_status(d),
            "approved": format_money(d.approved_amount, d.currency),
        }
        for d in payments_today(merchant=merchant)
    ]
    takings = takings_today(merchant=merchant)
    money = {
        "captured": format_money(takings.captured, takings.currency),
        "refunded": format_money(takings.refunded, takings.currency),
        "net": format_money(takings.net, takings.currency),
        "by_aid": [(a, f, format_money(n, takings.currency)) for a, f, n in takings.by_aid],
        "by_funder": [(f, format_money(n, takings.currency)) for f, n in takings.by_funder],
    }
    return render(request, "shop/today.html", {"payments": payments, "takings": money})


@member_required
def receipt(request, reference: str):
    decision = _payment(request, reference)
    if decision.status == Decision.Status.DECLINED:
        raise Http404
    return render(
        request,
        "shop/receipt.html",
        {
            "decision": decision,
            "answer": _answer(decision),
            "ops": _operations(decision),
            "merchant": request.member.merchant,
        },
    )
