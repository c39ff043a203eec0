"""The pockets of aid: balance, expiry and rules in plain words."""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext, ngettext
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app import selectors
from beneficiary_app.api.base import ERRORS, LANGUAGE, AppApi
from core.money import format_money
from core.time import format_until
from wallet.authorize import pocket_rules
from wallet.models import Pocket


class PocketOutput(serializers.Serializer):
    id = serializers.IntegerField()
    aid_name = serializers.CharField()
    funder_name = serializers.CharField()
    currency = serializers.CharField()
    available = serializers.IntegerField(help_text="In minor units: 1250 is 12.50 EUR.")
    available_display = serializers.CharField(help_text="Formatted: 12,50 € in French.")
    held = serializers.IntegerField(
        help_text="Reserved by payments the shops have not yet taken, in minor units."
    )
    held_display = serializers.CharField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(
        allow_null=True, help_text="The first instant the aid no longer works."
    )
    valid_until_display = serializers.CharField(
        allow_null=True, help_text='The last day, as people say it: "31 mars".'
    )
    expires_soon = serializers.BooleanField(help_text="The aid ends within 14 days.")
    expiry_warning = serializers.CharField(allow_null=True)
    rules = serializers.ListField(
        child=serializers.CharField(), help_text="Where, when and how much, in plain words."
    )


def _last_day(until: datetime):
    local = timezone.localtime(until)
    return local.date() - timedelta(days=1) if local.time() == time(0, 0) else local.date()


def _expiry_warning(pocket: Pocket, now: datetime) -> str | None:
    until = pocket.allocation.valid_until
    if not selectors.pocket_expires_soon(pocket, now=now):
        return None
    date = format_until(until)
    if until <= now:
        return gettext("This aid has ended: it could be used until %(date)s.") % {"date": date}
    days = (_last_day(until) - timezone.localtime(now).date()).days
    if days <= 0:
        return gettext("This aid ends today: it can be used until %(date)s.") % {"date": date}
    return ngettext(
        "This aid ends in %(days)d day: it can be used until %(date)s.",
        "This aid ends in %(days)d days: it can be used until %(date)s.",
        days,
    ) % {"days": days, "date": date}


def _pocket_data(pocket: Pocket, now: datetime) -> dict:
    allocation = pocket.allocation
    account = pocket.account
    currency = account.currency
    return {
        "id": pocket.pk,
        "aid_name": allocation.program.name,
        "funder_name": allocation.program.funder.name,
        "currency": currency,
        "available": account.available,
        "available_display": format_money(account.available, currency),
        "held": account.pending,
        "held_display": format_money(account.pending, currency),
        "valid_from": allocation.valid_from,
        "valid_until": allocation.valid_until,
        "valid_until_display": (
            format_until(allocation.valid_until) if allocation.valid_until else None
        ),
        "expires_soon": selectors.pocket_expires_soon(pocket, now=now),
        "expiry_warning": _expiry_warning(pocket, now),
        "rules": pocket_rules(pocket).describe(currency=currency),
    }


POCKET_EXAMPLE = {
    "id": 17,
    "aid_name": "Aide alimentaire",
    "funder_name": "Département de l'Isère",
    "currency": "EUR",
    "available": 7450,
    "available_display": "74,50 €",
    "held": 1250,
    "held_display": "12,50 €",
    "valid_from": "2026-11-01T00:00:00+01:00",
    "valid_until": "2026-12-01T00:00:00+01:00",
    "valid_until_display": "30 novembre 2026 inclus",
    "expires_soon": True,
    "expiry_warning": "Cette aide se termine dans 8 jours : elle peut être utilisée jusqu'au "
    "30 novembre 2026 inclus.",
    "rules": [
        "Peut être utilisée du 1 novembre 2026 au 30 novembre 2026 inclus.",
        "Seulement dans : commerces alimentaires.",
        "Seulement dans cette zone : Isère (38).",
        "Au plus 25,00 € par jour.",
    ],
}


class PocketListApi(AppApi):
    class PocketListOutput(serializers.Serializer):
        data = PocketOutput(many=True)

    @extend_schema(
        summary="The pockets of aid",
        operation_id="pockets_list",
        description="Each active aid: its balance, expiry and rules in plain words, the one "
        "that ends first first.",
        parameters=[LANGUAGE],
        responses={200: PocketListOutput, **ERRORS},
        examples=[OpenApiExample("Pockets", response_only=True, value={"data": [POCKET_EXAMPLE]})],
    )
    def get(self, request):
        now = timezone.now()
        pockets = selectors.pocket_list(wallet=self.wallet)
        return Response(
            self.PocketListOutput({"data": [_pocket_data(pocket, now) for pocket in pockets]}).data
        )


class PocketDetailApi(AppApi):
    @extend_schema(
        summary="One pocket of aid",
        parameters=[LANGUAGE],
        responses={200: PocketOutput, **ERRORS},
        examples=[OpenApiExample("Pocket", response_only=True, value=POCKET_EXAMPLE)],
    )
    def get(self, request, pocket_id: int):
        pocket = selectors.pocket_get(wallet=self.wallet, pocket_id=pocket_id)
        return Response(PocketOutput(_pocket_data(pocket, timezone.now())).data)
