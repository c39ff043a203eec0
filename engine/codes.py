"""Reason codes of an authorization, their ISO 8583 response codes, and the plain-words messages.

The code is the stable contract (API responses, stored traces, reports); the ISO 8583 code is
what the card network shows at the terminal; the messages are for people. A beneficiary message
names the aid and the rule and says what to do; a merchant message reveals nothing private
about the beneficiary (no aid name, no balance, no rule detail beyond what the shop can act on).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.dates import WEEKDAYS
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from core.time import format_instant, format_until
from core.types import JSONDict
from engine import categories, geo

DECLINED = 402  # HTTP status of a decision that refuses the payment (as Stripe does)


@dataclass(frozen=True)
class Reason:
    code: str
    iso8583: str  # response code sent to the card network (field 39)
    http_status: int  # for the merchant API: 200 approved, 402 refused, 4xx bad input, 5xx ours
    merchant_text: Promise


# 57 ("transaction not permitted to cardholder") is the code for every rule of the aid: the card
# is fine, this use of it is not. 54 ("expired card") is not used for an expired aid: the
# terminal would tell the shop the card has expired, while the card still carries other aid.
_WHEN = _("Payment refused: the customer's aid cannot be used at this time.")
_WHERE = _("Payment refused: the customer's aid cannot be used in this shop.")
_FUNDS = _(
    "Payment refused: the customer's aid does not cover this amount. "
    "Please ask for another means of payment."
)
_INSTRUMENT = _("Payment refused: this card or account cannot be used.")

REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        Reason("approved", "00", 200, _("Payment accepted.")),
        Reason("aid_not_yet_valid", "57", DECLINED, _WHEN),
        Reason("aid_expired", "57", DECLINED, _WHEN),
        Reason("outside_allowed_hours", "57", DECLINED, _WHEN),
        Reason("merchant_category_not_allowed", "57", DECLINED, _WHERE),
        Reason("merchant_not_accepted", "57", DECLINED, _WHERE),
        Reason("outside_zone", "57", DECLINED, _WHERE),
        # A card shop that is not one of our merchants, where the rule could only take in a
        # shop we know (an allow list, a circle): we cannot tell, so we do not say "outside".
        Reason(
            "merchant_not_recognised",
            "57",
            DECLINED,
            _("Payment refused: the shop is not recognised for this aid."),
        ),
        Reason(
            "limit_exceeded",
            "61",  # exceeds amount limit
            DECLINED,
            _(
                "Payment refused: the amount is above the limit of the customer's aid. "
                "A smaller amount may be accepted."
            ),
        ),
        # Only with basket lines: the aid does not pay for these products (tobacco on a food
        # aid). The shop can act on it: take those lines another way.
        Reason(
            "product_not_covered",
            "57",
            DECLINED,
            _(
                "Payment refused: the customer's aid does not pay for some products in this "
                "basket. Please take them another way."
            ),
        ),
        Reason("insufficient_funds", "51", DECLINED, _FUNDS),
        Reason("no_aid_available", "51", DECLINED, _FUNDS),
        Reason("wallet_frozen", "62", DECLINED, _INSTRUMENT),  # restricted card
        Reason("card_frozen", "62", DECLINED, _INSTRUMENT),
        # Not 41/43 (lost/stolen, pick up): "inactive" also covers a card replaced or closed.
        Reason("card_inactive", "62", DECLINED, _INSTRUMENT),
        Reason(
            "merchant_suspended",
            "03",  # invalid merchant
            403,  # the merchant's key is valid but the merchant may not take payments now
            _(
                "Payment refused: your shop cannot accept aid payments at the moment. "
                "Please contact support."
            ),
        ),
        Reason(
            "currency_not_supported",
            "57",
            DECLINED,  # depends on the wallet, not on the form of the request
            _("Payment refused: the customer's aid cannot be used in this currency."),
        ),
        Reason("invalid_amount", "13", 422, _("Payment refused: the amount is not valid.")),
        Reason("amount_too_large", "13", 422, _("Payment refused: the amount is too large.")),
        Reason(
            "internal_error",
            "96",  # system malfunction: the network may retry or stand in
            500,
            _("Payment refused because of a technical problem. Please try again."),
        ),
    )
}


def merchant_message(code: str) -> str:
    """What the shop is told: short, and nothing private about the beneficiary."""
    return str(REASONS[code].merchant_text)


def merchant_partial_message(*, approved: int, amount: int, currency: str) -> str:
    """What the shop is told of a partial approval, whatever its reason: the payment is accepted
    for part of the amount, and the till must collect the rest. Why the aid paid no more (a
    limit, the money left on it) is the beneficiary's business, told to them alone."""
    return gettext("Approved for %(approved)s: collect the rest (%(rest)s) another way.") % {
        "approved": format_money(approved, currency),
        "rest": format_money(amount - approved, currency),
    }


# --- money, dates and times, formatted only here, at the edge -------------------------------


def format_weekdays(weekdays: list[int]) -> str:
    return ", ".join(str(WEEKDAYS[day]) for day in sorted(weekdays))


def format_hours(hours: list[list[str]]) -> str:
    return ", ".join(
        gettext("%(start)s to %(end)s") % {"start": start, "end": end} for start, end in hours
    )


def format_places(details: JSONDict) -> str:
    """The places of a zone that a person can recognise: countries and départements, some with
    their neighbours."""
    places = [str(_("France")) if code == "FR" else code for code in details.get("countries", [])]
    places += [geo.territory_label(code) for code in details.get("departements", [])]
    places += [
        gettext("%(departement)s and its neighbouring départements")
        % {"departement": geo.territory_label(code)}
        if geo.departement_neighbours(code)
        else geo.territory_label(code)
        for code in details.get("departements_with_neighbours", [])
    ]
    return ", ".join(places)


# --- beneficiary messages ---------------------------------------------------------------------
# Each builder returns the message without the aid's name, starting in lower case so that it
# reads after "Food aid: "; beneficiary_message() adds the name or a capital.


def _money(details: JSONDict, key: str) -> str:
    return format_money(details[key], details.get("currency", "EUR"))


def _not_yet_valid(details: JSONDict) -> list[str]:
    if "valid_from" not in details:
        return [gettext("this aid cannot be used yet.")]
    start = datetime.fromisoformat(details["valid_from"])
    return [gettext("this aid can be used from %(date)s.") % {"date": format_instant(start)}]


def _expired(details: JSONDict) -> list[str]:
    if "valid_until" not in details:
        return [gettext("this aid has expired.")]
    end = datetime.fromisoformat(details["valid_until"])
    return [
        gettext("this aid could be used until %(date)s. It has expired.")
        % {"date": format_until(end)}
    ]


def _hours(details: JSONDict) -> list[str]:
    if details.get("public_holiday"):
        parts = [gettext("this aid cannot be used on public holidays.")]
    else:
        parts = [gettext("this aid cannot be used at this time.")]
    weekdays = details.get("weekdays", list(range(7)))
    if len(weekdays) < 7:
        parts.append(
            gettext("It can be used on these days: %(days)s.") % {"days": format_weekdays(weekdays)}
        )
    if details.get("hours"):
        parts.append(
            gettext("It can be used at these times: %(hours)s.")
            % {"hours": format_hours(details["hours"])}
        )
    return parts


def _category(details: JSONDict) -> list[str]:
    if details.get("cause") == "cash":
        return [gettext("this aid cannot be used to get cash or anything that works like cash.")]
    parts = [gettext("this aid cannot be used in this kind of shop.")]
    groups = details.get("allow_groups")
    if groups:
        kinds = ", ".join(str(categories.GROUP_LABELS[name]) for name in groups)
        parts.append(gettext("It can be used in: %(kinds)s.") % {"kinds": kinds})
    return parts


def _merchant(details: JSONDict) -> list[str]:
    if details.get("cause") == "not_listed":
        return [
            gettext(
                "this shop is not one of the partner shops of this aid. "
                "The partner shops are listed in the app."
            )
        ]
    return [gettext("this aid cannot be used in this shop.")]


def _not_recognised(details: JSONDict) -> list[str]:
    parts = [gettext("this shop is not recognised for this aid.")]
    if details.get("cause") == "allow_list":
        parts.append(
            gettext(
                "This aid can only be used in its partner shops, which are listed in the app. If "
                "this is one of them, pay with a code from the app: we do not know its card "
                "terminal yet."
            )
        )
    else:
        parts.append(
            gettext(
                "This aid can only be used near a given place, and the place of this shop is "
                "not known. The app shows where you can use it."
            )
        )
    return parts


def _zone(details: JSONDict) -> list[str]:
    if details.get("unknown_location"):
        parts = [
            gettext(
                "the place of this shop is not known, and this aid can only be used in "
                "a limited area."
            )
        ]
    elif places := format_places(details):
        parts = [
            gettext("this shop is outside the area where this aid can be used: %(places)s.")
            % {"places": places}
        ]
    else:
        parts = [gettext("this shop is outside the area where this aid can be used.")]
    parts.append(gettext("The app shows where you can use it."))
    return parts


_LIMIT_MESSAGES = {
    "day": _("this aid can pay up to %(cap)s per day, and %(used)s has already been paid today."),
    "week": _(
        "this aid can pay up to %(cap)s per week, from Monday to Sunday, "
        "and %(used)s has already been paid this week."
    ),
    "month": _(
        "this aid can pay up to %(cap)s per month, and %(used)s has already been paid this month."
    ),
    "year": _(
        "this aid can pay up to %(cap)s per year, and %(used)s has already been paid this year."
    ),
    "validity": _("this aid can pay up to %(cap)s in all, and %(used)s has already been paid."),
}


def _limit(details: JSONDict) -> list[str]:
    limit = details.get("limit")
    if limit == "per_payment":
        return [
            gettext("a single payment with this aid cannot be more than %(cap)s.")
            % {"cap": _money(details, "cap")},
            gettext("You can pay the rest another way."),
        ]
    if limit in _LIMIT_MESSAGES:
        return [
            str(_LIMIT_MESSAGES[limit])
            % {"cap": _money(details, "cap"), "used": _money(details, "used")},
            gettext("You can pay the rest another way."),
        ]
    return [gettext("this payment is above the limit of this aid.")]


def _funds(details: JSONDict) -> list[str]:
    if details.get("available"):
        return [
            gettext("there is not enough money left on your aid for this payment."),
            gettext("%(available)s can be paid with it; please pay the rest another way.")
            % {"available": _money(details, "available")},
        ]
    return [gettext("there is no money left on your aid for this payment.")]


def _products(details: JSONDict) -> list[str]:
    families = details.get("families") or []
    if not families:
        return [gettext("this aid does not pay for these products.")]
    return [
        gettext("this aid does not pay for %(products)s.")
        % {"products": categories.format_products(families)},
        gettext("You can pay for them another way."),
    ]


def _fixed(message: Promise) -> Callable[[JSONDict], list[str]]:
    return lambda details: [str(message)]


_BENEFICIARY: dict[str, Callable[[JSONDict], list[str]]] = {
    "approved": _fixed(_("the payment is accepted.")),
    "aid_not_yet_valid": _not_yet_valid,
    "aid_expired": _expired,
    "outside_allowed_hours": _hours,
    "merchant_category_not_allowed": _category,
    "merchant_not_accepted": _merchant,
    "merchant_not_recognised": _not_recognised,
    "outside_zone": _zone,
    "limit_exceeded": _limit,
    "insufficient_funds": _funds,
    "product_not_covered": _products,
    "no_aid_available": _fixed(_("you have no aid that can be used for this payment.")),
    "wallet_frozen": _fixed(
        _("your aid account is blocked. Please contact the organisation that gives you the aid.")
    ),
    "card_frozen": _fixed(_("your card is blocked. You can unblock it in the app.")),
    "card_inactive": _fixed(
        _(
            "this card can no longer be used. Please use your new card, or contact "
            "the organisation that gives you the aid."
        )
    ),
    "merchant_suspended": _fixed(
        _("this shop cannot take aid payments at the moment. Please pay another way.")
    ),
    "currency_not_supported": _fixed(_("your aid cannot be used to pay in this currency.")),
    "invalid_amount": _fixed(
        _("the amount of the payment is not valid. Please ask the shop to check it.")
    ),
    "amount_too_large": _fixed(
        _("the amount of the payment is too large. Please ask the shop to check it.")
    ),
    "internal_error": _fixed(
        _(
            "the payment could not be made because of a technical problem. "
            "Please try again in a few minutes."
        )
    ),
}


def beneficiary_message(
    code: str, *, pocket_name: str | None = None, details: JSONDict | None = None
) -> str:
    """Plain words for the person paying: which aid, which rule, what to do.

    "Food aid: this shop is outside the area where this aid can be used (Isère (38)). The app
    shows where you can use it." `details` are the Outcome's (see decide); money in them is in
    minor units of details["currency"] (EUR when absent)."""
    return " ".join(_named(code, pocket_name, details))


def beneficiary_partial_message(
    code: str,
    *,
    approved: int,
    amount: int,
    currency: str,
    pocket_name: str | None = None,
    details: JSONDict | None = None,
) -> str:
    """A partial approval in plain words: what the aid paid and what is left to pay, then why
    it paid no more. "Your aid paid €10.00: please pay the rest (€15.00) another way. Food aid:
    there is not enough money left on your aid for this payment." The reason's own advice
    (what can be paid with the aid, paying the rest another way) is left out: it is said
    first, with the amounts."""
    paid = gettext("Your aid paid %(approved)s: please pay the rest (%(rest)s) another way.") % {
        "approved": format_money(approved, currency),
        "rest": format_money(amount - approved, currency),
    }
    return " ".join([paid, _named(code, pocket_name, details)[0]])


def _named(code: str, pocket_name: str | None, details: JSONDict | None) -> list[str]:
    """The message's sentences, the first after the aid's name or with a capital."""
    first, *rest = _BENEFICIARY[code](details or {})
    if pocket_name:
        first = gettext("%(pocket)s: %(message)s") % {"pocket": pocket_name, "message": first}
    else:
        first = capfirst(first)
    return [first, *rest]


# --- where else the aid is accepted -----------------------------------------------------------

# Refusals about the shop (its kind, the shop itself, its place): the same aid may be accepted
# in another shop, and the person is told the nearest ones.
SHOP_REASONS = frozenset(
    {
        "merchant_category_not_allowed",
        "merchant_not_accepted",
        "merchant_not_recognised",
        "outside_zone",
    }
)


def format_distance(metres: int) -> str:
    """ "450 m" under a kilometre, "1,2 km" under ten (the language's decimal mark), then whole
    kilometres: as precise as a walk or a bus ride needs."""
    if metres < 1000:
        return f"{metres}\u00a0m"
    kilometres = metres / 1000
    if kilometres < 10:
        return f"{number_format(kilometres, 1)}\u00a0km"
    return f"{number_format(round(kilometres))}\u00a0km"


def nearby_message(shops: Sequence[tuple[str, int | None]], *, accepting: int) -> str:
    """ "Where to use this aid near here: Épicerie X (450 m), Marché Y (1,2 km)." from (name,
    distance in metres or None) pairs, nearest first; `accepting` counts the shops that accept
    the aid anywhere, to tell "none near here" from "none at all"."""
    if shops:
        names = [
            name if metres is None else f"{name} ({format_distance(metres)})"
            for name, metres in shops
        ]
        return gettext("Where to use this aid near here: %(shops)s.") % {"shops": ", ".join(names)}
    if accepting:
        return gettext("No shop near here accepts this aid. The app lists the shops that do.")
    return gettext("No shop accepts this aid at the moment.")
