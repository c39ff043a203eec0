"""The pockets of aid: balance, expiry and rules in plain words."""

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext, ngettext
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from beneficiary_app import selectors
from beneficiary_app.api.base import (
    ERRORS,
    FUNDER_EXAMPLE,
    LANGUAGE,
    AppApi,
    FunderOutput,
    funder_data,
)
from core.french import for_sentence
from core.money import format_money
from core.phones import format_phone
from core.time import format_until, format_until_inclusive
from wallet.authorize import pocket_rules
from wallet.models import Pocket


class PocketOutput(serializers.Serializer):
    id = serializers.IntegerField()
    aid_name = serializers.CharField()
    funder_name = serializers.CharField()
    funder = FunderOutput()
    given_by = serializers.CharField(help_text='"De la part du Département de l\'Isère".')
    where_title = serializers.CharField(help_text='"Où utiliser l\'Aide alimentaire ?".')
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
    valid_until_phrase = serializers.CharField(
        allow_null=True,
        help_text='The last day, whole: "jusqu\'au 30 septembre 2027 inclus".',
    )
    expires_soon = serializers.BooleanField(help_text="The aid ends within 14 days.")
    expiry_warning = serializers.CharField(allow_null=True)
    rules = serializers.ListField(
        child=serializers.CharField(), help_text="Where, when and how much, in plain words."
    )
    no_shop = serializers.CharField(
        allow_null=True,
        help_text="When no approved shop accepts this aid yet: whom to contact. Null otherwise.",
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


def _no_shop(pocket: Pocket, has_shop: bool) -> str | None:
    """Whom to ask when no approved shop accepts the aid yet, or None when some shop does."""
    if has_shop:
        return None
    funder = pocket.allocation.program.funder
    if funder.contact_phone:
        return gettext(
            "No shop accepts this aid yet. Call %(funder)s on %(phone)s to know where to use it."
        ) % {"funder": for_sentence(funder.name), "phone": format_phone(funder.contact_phone)}
    # Translators: in French %(funder)s comes with "à" and its article ("au Département").
    return gettext("No shop accepts this aid yet. Ask %(funder)s where to use it.") % {
        "funder": for_sentence(funder.name, "à")
    }


def _pocket_data(pocket: Pocket, now: datetime, has_shop: bool) -> dict:
    allocation = pocket.allocation
    account = pocket.account
    currency = account.currency
    return {
        "id": pocket.pk,
        "aid_name": allocation.program.name,
        "funder_name": allocation.program.funder.name,
        "funder": funder_data(allocation.program.funder),
        # Translators: in French %(funder)s comes with its article and "de" ("du Département
        # de l'Isère"): "De la part %(funder)s".
        "given_by": gettext("Given by %(funder)s")
        % {"funder": for_sentence(allocation.program.funder.name, "de")},
        # Translators: in French %(aid)s comes with its article ("l'Aide alimentaire").
        "where_title": gettext("Where can I use %(aid)s?")
        % {"aid": for_sentence(allocation.program.name)},
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
        "valid_until_phrase": (
            format_until_inclusive(allocation.valid_until) if allocation.valid_until else None
        ),
        "expires_soon": selectors.pocket_expires_soon(pocket, now=now),
        "expiry_warning": _expiry_warning(pocket, now),
        "rules": pocket_rules(pocket).describe(currency=currency),
        "no_shop": _no_shop(pocket, has_shop),
    }


POCKET_EXAMPLE = {
    "id": 17,
    "aid_name": "Aide alimentaire",
    "funder_name": "Département de l'Isère",
    "funder": FUNDER_EXAMPLE,
    "given_by": "De la part du Département de l'Isère",
    "where_title": "Où utiliser l'Aide alimentaire ?",
    "currency": "EUR",
    "available": 7450,
    "available_display": "74,50 €",
    "held": 1250,
    "held_display": "12,50 €",
    "valid_from": "2026-11-01T00:00:00+01:00",
    "valid_until": "2026-12-01T00:00:00+01:00",
    "valid_until_display": "30 novembre 2026 inclus",
    "valid_until_phrase": "jusqu'au 30 novembre 2026 inclus",
    "expires_soon": True,
    "expiry_warning": "Cette aide se termine dans 8 jours : elle peut être utilisée jusqu'au "
    "30 novembre 2026 inclus.",
    "rules": [
        "Peut être utilisée du 1 novembre 2026 au 30 novembre 2026 inclus.",
        "Seulement dans : commerces alimentaires.",
        "Seulement dans cette zone : Isère (38).",
        "Au plus 25,00 € par jour.",
    ],
    "no_shop": None,
}


class PocketListApi(AppApi):
    class TotalOutput(serializers.Serializer):
        currency = serializers.CharField()
        available = serializers.IntegerField()
        available_display = serializers.CharField()

    class PocketListOutput(serializers.Serializer):
        data = PocketOutput(many=True)
        totals = serializers.ListField(
            child=serializers.DictField(),
            help_text="What can be spent in all, one line per currency (one in practice).",
        )

    @extend_schema(
        summary="The pockets of aid",
        operation_id="pockets_list",
        description="Each active aid: its balance, expiry and rules in plain words, who gives it "
        "and whom to call, the one that ends first first; and the total that can be spent.",
        parameters=[LANGUAGE],
        responses={200: PocketListOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Pockets",
                response_only=True,
                value={
                    "data": [POCKET_EXAMPLE],
                    "totals": [
                        {"currency": "EUR", "available": 7450, "available_display": "74,50 €"}
                    ],
                },
            )
        ],
    )
    def get(self, request):
        now = timezone.now()
        pockets = list(selectors.pocket_list(wallet=self.wallet))
        with_shop = selectors.pockets_with_shop(pockets)
        totals: dict[str, int] = {}
        for pocket in pockets:
            currency = pocket.account.currency
            totals[currency] = totals.get(currency, 0) + pocket.account.available
        return Response(
            self.PocketListOutput(
                {
                    "data": [
                        _pocket_data(pocket, now, pocket.pk in with_shop) for pocket in pockets
                    ],
                    "totals": [
                        {
                            "currency": currency,
                            "available": amount,
                            "available_display": format_money(amount, currency),
                        }
                        for currency, amount in totals.items()
                    ],
                }
            ).data
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
        has_shop = pocket.pk in selectors.pockets_with_shop([pocket])
        return Response(PocketOutput(_pocket_data(pocket, timezone.now(), has_shop)).data)
