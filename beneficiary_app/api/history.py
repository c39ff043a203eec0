"""The history, newest first: aid granted and ended, payments and refunds, each in one
sentence."""

from django.utils.text import capfirst
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from beneficiary_app import selectors
from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, LANGUAGE, AppApi
from beneficiary_app.api.payments import DECLINED_PAYMENT_EXAMPLE, PaymentOutput, payment_data
from core.french import for_sentence
from core.money import format_money
from ledger.models import Transfer
from wallet.models import Decision

MINUS = "\u2212"  # a true minus sign, as wide as the plus: the amounts line up


def _signed(amount: int, currency: str) -> str | None:
    if amount == 0:
        return None
    return ("+" if amount > 0 else MINUS) + format_money(abs(amount), currency)


class HistoryItemOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["aid_granted", "aid_ended", "payment", "refund"])
    at = serializers.DateTimeField()
    summary = serializers.CharField(help_text="The event in one sentence.")
    amount = serializers.IntegerField(
        help_text="Granted, returned to the funder, asked by the shop, or refunded."
    )
    amount_display = serializers.CharField()
    currency = serializers.CharField()
    pocket_id = serializers.IntegerField(allow_null=True)
    aid_name = serializers.CharField(allow_null=True)
    funder_name = serializers.CharField(allow_null=True)
    merchant_name = serializers.CharField(allow_null=True)
    payment_reference = serializers.CharField(
        allow_null=True, help_text="The payment (GET /history/{reference}) it is about."
    )
    payment = PaymentOutput(allow_null=True, help_text="For type payment.")
    signed_amount_display = serializers.CharField(
        allow_null=True,
        help_text='What the event did to the money you can spend: "+150,00 €", "\u221212,50 €" '
        "(what the shop really took or still holds); null when nothing moved.",
    )
    note = serializers.CharField(
        allow_null=True,
        help_text='For a payment: "réservé" while the shop has not taken it yet, or what was '
        'given back ("4,60 € vous ont été rendus"). Null otherwise.',
    )
    back_to_aid = serializers.BooleanField(
        allow_null=True,
        help_text="For a refund: true when the money went back to the aid; false when the aid "
        "had ended and it went back to the funder.",
    )


def _aid_event(event: selectors.HistoryEvent) -> dict:
    pocket = event.obj
    allocation = pocket.allocation
    program = allocation.program
    names = {"aid": program.name, "funder": program.funder.name}
    # At the start of a sentence: "Le Département de l'Isère vous a accordé…" in French.
    subject = {**names, "funder": capfirst(for_sentence(program.funder.name))}
    if event.type == "aid_granted":
        amount = allocation.amount
        summary = gettext("%(funder)s granted you %(amount)s: %(aid)s.") % {
            **subject,
            "amount": format_money(amount, allocation.currency),
        }
    else:
        amount = pocket.returned
        if allocation.status == allocation.Status.REVOKED:
            summary = gettext("%(funder)s ended this aid: %(aid)s.") % subject
        else:
            summary = gettext("This aid has ended: %(aid)s.") % names
        if amount > 0:
            summary += " " + gettext("%(amount)s that was left went back to %(funder)s.") % {
                **names,
                "amount": format_money(amount, allocation.currency),
            }
    return {
        "amount": amount,
        "amount_display": format_money(amount, allocation.currency),
        "signed_amount_display": _signed(
            amount if event.type == "aid_granted" else -amount, allocation.currency
        ),
        "currency": allocation.currency,
        "summary": summary,
        "pocket_id": pocket.pk,
        "aid_name": program.name,
        "funder_name": program.funder.name,
    }


def _payment_event(event: selectors.HistoryEvent, money: selectors.PaymentMoney) -> dict:
    """A payment as it really went: what the shop took (or still holds), and what it gave back
    by taking less than it reserved."""
    decision = event.obj
    payment = payment_data(decision)
    currency = payment["currency"]
    paid = money.captured + money.held
    released = decision.approved_amount - paid
    words = {
        "amount": payment["amount_display"],
        "paid": format_money(paid, currency),
        "approved": payment["approved_amount_display"],
        "merchant": payment["merchant_name"],
    }
    if decision.status == Decision.Status.DECLINED:
        summary = gettext("A payment of %(amount)s at %(merchant)s was refused.") % words
    elif paid == 0:
        summary = gettext("A payment of %(approved)s at %(merchant)s was cancelled.") % words
    elif decision.status == Decision.Status.PARTIALLY_APPROVED:
        summary = (
            gettext("%(approved)s of %(amount)s was paid with your aid at %(merchant)s.") % words
        )
    else:
        summary = gettext("You paid %(amount)s at %(merchant)s.") % {
            **words,
            "amount": words["paid"],
        }
    note = None
    if money.held > 0:
        note = gettext("reserved")
    elif released > 0 and decision.status != Decision.Status.DECLINED:
        note = gettext("%(amount)s given back to you") % {
            "amount": format_money(released, currency)
        }
    return {
        "amount": payment["amount"],
        "amount_display": payment["amount_display"],
        "signed_amount_display": _signed(-paid, currency),
        "note": note,
        "currency": currency,
        "summary": summary,
        "merchant_name": payment["merchant_name"],
        "payment_reference": payment["reference"],
        "payment": payment,
    }


def _refund_event(event: selectors.HistoryEvent) -> dict:
    refund: Transfer = event.obj
    hold = refund.refund_of.pending_transfer.decision_hold
    decision = hold.decision
    merchant_name = selectors.payment_merchant_name(decision)
    summary = gettext("%(merchant)s refunded %(amount)s.") % {
        "merchant": merchant_name,
        "amount": format_money(refund.amount, refund.currency),
    }
    if not refund.back_to_pocket:
        summary += " " + gettext(
            "The aid had ended, so the money went back to the organisation that gave it."
        )
    return {
        "amount": refund.amount,
        "amount_display": format_money(refund.amount, refund.currency),
        "signed_amount_display": (
            _signed(refund.amount, refund.currency) if refund.back_to_pocket else None
        ),
        "currency": refund.currency,
        "summary": summary,
        "pocket_id": hold.pocket_id,
        "aid_name": hold.pocket.allocation.program.name,
        "merchant_name": merchant_name,
        "payment_reference": decision.reference,
        "back_to_aid": refund.back_to_pocket,
    }


_EVENT_DATA = {
    "aid_granted": _aid_event,
    "aid_ended": _aid_event,
    "refund": _refund_event,
}
_EMPTY_EVENT = dict.fromkeys(
    [
        "pocket_id",
        "aid_name",
        "funder_name",
        "merchant_name",
        "payment_reference",
        "payment",
        "signed_amount_display",
        "note",
        "back_to_aid",
    ]
)


class HistoryListApi(AppApi):
    class HistoryQuery(serializers.Serializer):
        cursor = serializers.CharField(max_length=200, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=100, default=25)

    class HistoryPageOutput(serializers.Serializer):
        next = serializers.URLField(allow_null=True)
        results = HistoryItemOutput(many=True)

    @extend_schema(
        summary="History, newest first",
        operation_id="history_list",
        description="Aid granted and ended, payments (accepted, partly accepted, refused, with "
        "the reason in plain words and what to do) and refunds. Follow `next` for older "
        "events.",
        parameters=[
            OpenApiParameter("cursor", str, description="From `next`; leave out for the newest."),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                description="Events per page, 1 to 100 (25).",
            ),
            LANGUAGE,
        ],
        responses={200: HistoryPageOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "next": "https://wallet.example.org/api/app/v1/history?cursor=MjAyNi0xMS0y",
                    "results": [
                        {
                            "type": "payment",
                            "at": DECLINED_PAYMENT_EXAMPLE["at"],
                            "summary": "Un paiement de 18,00 € chez Bar du Centre a été refusé.",
                            "amount": 1800,
                            "amount_display": "18,00 €",
                            "currency": "EUR",
                            "pocket_id": None,
                            "aid_name": None,
                            "funder_name": None,
                            "merchant_name": "Bar du Centre",
                            "payment_reference": DECLINED_PAYMENT_EXAMPLE["reference"],
                            "payment": DECLINED_PAYMENT_EXAMPLE,
                            "signed_amount_display": None,
                            "note": None,
                            "back_to_aid": None,
                        }
                    ],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request):
        # DRF reads `?limit=` as "no limit given"; the schema documents a number, so an empty
        # value is the client's mistake, not the default page.
        for name in ("cursor", "limit"):
            if request.query_params.get(name) == "":
                empty = gettext("This parameter cannot be empty.")
                raise serializers.ValidationError({name: empty})
        query = self.HistoryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        cursor = selectors.HistoryCursor.decode(params["cursor"]) if "cursor" in params else None
        events, following = selectors.history_page(
            wallet=self.wallet, cursor=cursor, limit=params["limit"]
        )
        money = selectors.payments_money([e.obj for e in events if e.type == "payment"])
        results = [
            {
                **_EMPTY_EVENT,
                "type": e.type,
                "at": e.at,
                **(
                    _payment_event(e, money[e.obj.pk])
                    if e.type == "payment"
                    else _EVENT_DATA[e.type](e)
                ),
            }
            for e in events
        ]
        next_url = None
        if following is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", following.encode()
            )
        return Response(self.HistoryPageOutput({"next": next_url, "results": results}).data)
