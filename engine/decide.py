"""The decision: every pocket against its rules, the split of the amount, the outcome. Pure.

Order of the checks, for each pocket in the request's currency: validity, schedule,
categories, merchants, zone, products, limits; the first that fails is the pocket's reason.

Basket lines (request.lines): a pocket pays only the lines of the product families its rules
allow. Each pocket, in split order, takes first the lines that fewer pockets after it could pay
(so an aid that pays food and hygiene leaves the food to a food-only aid after it), then in the
basket's order. The result gives, per line, what each pocket paid (Outcome.lines), and the
eligible subtotal: what the eligible pockets' rules would pay, whatever their balances. Without
lines the whole amount is one line every pocket may pay: the split is the same as before.
When a line's family no pocket pays is what is left, the shortfall's reason is
product_not_covered.

Order of the split (`split_key`): the pocket whose valid_until comes first (no end last), then
the most restrictive (`restrictiveness`), then the oldest, then the smallest id. Aid that can
be spent in fewer places, or for less long, is used before aid that can wait.

Reason of a shortfall (partial approval or decline while some pocket could pay): limit_exceeded,
about the first pocket in split order that a limit held back, when the eligible balances would
have covered the amount; insufficient_funds otherwise.

Reason of a decline when no pocket can pay anything (`_closest_refusal`): the pocket most meant
for this shop, then the one that came closest to paying. A pocket is meant for this shop when its
shop checks (categories, merchants, zone) pass, whatever its other checks say: an expired food aid
at a grocer is the aid this payment was for, while a transport aid never was, and naming the
transport aid would tell the shop its kind of shop is refused and the beneficiary something beside
the point. So the pockets are ranked by
  1. how far they get through the shop checks, in their order (all three passed first, then
     those that fail at the zone, then at the merchant lists, then at the categories); among
     pockets meant for the shop this leaves their own failing check (validity, schedule,
     limits, funds) as the reason, and a shop check is the reason only when no pocket is meant
     for the shop;
  2. a pocket that has money over one that has none (telling someone "no money left" while their
     other aid has money would mislead);
  3. the pocket whose failing check came latest in the order above (an eligible but empty pocket
     counts as having passed them all, and answers insufficient_funds);
  4. split order.
The reason told is always the named pocket's own first failing check, as in its verdict.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.money import MAX_AMOUNT
from core.types import JSONDict
from engine import categories, rules
from engine.periods import Usage
from engine.request import AuthorizationRequest, BasketLine
from engine.rules import PocketRules, Verdict, ZoneRule

# The verdicts of shop checks by (check, rule, shop): see decide's `shop_checks`.
ShopChecks = dict[tuple[object, object, object], Verdict]

STAGES = ("validity", "schedule", "categories", "merchants", "zone", "products", "limits")


@dataclass(frozen=True)
class PocketState:
    pocket_id: int
    name: str
    funder_name: str
    rules: PocketRules
    available: int  # balance - pending, minor units
    currency: str
    created_at: datetime
    usage: Usage


@dataclass(frozen=True)
class PocketVerdict:
    pocket_id: int
    verdict: Verdict

    def to_dict(self) -> JSONDict:
        return {
            "pocket_id": self.pocket_id,
            "eligible": self.verdict.eligible,
            "reason": self.verdict.reason,
            "details": self.verdict.details,
            "capacity": self.verdict.capacity,
        }


@dataclass(frozen=True)
class LineShare:
    """A basket line and what each pocket paid of it; the rest is paid another way."""

    line: BasketLine
    paid: tuple[tuple[int, int], ...]  # (pocket_id, amount)

    @property
    def rest(self) -> int:
        return self.line.amount - sum(amount for _, amount in self.paid)

    def to_dict(self) -> JSONDict:
        return {
            "amount": self.line.amount,
            "category": self.line.category,
            "paid": [{"pocket_id": pid, "amount": amount} for pid, amount in self.paid],
        }


@dataclass(frozen=True)
class Share:
    """What one aid paid, and whose money it is: what the till's receipt and the answer show.
    The names are those of the moment of the decision, as a receipt's are."""

    pocket_id: int
    aid: str
    funder: str
    amount: int

    def to_dict(self) -> JSONDict:
        return {
            "pocket_id": self.pocket_id,
            "aid": self.aid,
            "funder": self.funder,
            "amount": self.amount,
        }


@dataclass(frozen=True)
class Outcome:
    status: str  # "approved" | "partially_approved" | "declined"
    approved_amount: int
    reason: str | None  # None when approved in full
    details: JSONDict
    pocket_name: str | None  # the pocket the reason is about, for the beneficiary message
    verdicts: tuple[PocketVerdict, ...]
    split: tuple[tuple[int, int], ...]  # (pocket_id, amount) in the order used
    lines: tuple[LineShare, ...] = ()  # only when the request has basket lines
    eligible_amount: int | None = None  # with basket lines: what the eligible aid may pay
    shares: tuple[Share, ...] = ()  # with basket lines: the split, named

    def to_dict(self) -> JSONDict:
        basket: JSONDict = {}
        if self.lines:
            basket = {
                "lines": [share.to_dict() for share in self.lines],
                "eligible_amount": self.eligible_amount,
                "shares": [share.to_dict() for share in self.shares],
            }
        return basket | {
            "status": self.status,
            "approved_amount": self.approved_amount,
            "reason": self.reason,
            "details": self.details,
            "pocket_name": self.pocket_name,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "split": [{"pocket_id": pid, "amount": amount} for pid, amount in self.split],
        }


def _checks(
    pocket: PocketState, request: AuthorizationRequest, shop_checks: ShopChecks | None = None
) -> tuple[Callable[[], Verdict], ...]:
    """The pocket's checks, in the order of STAGES, each run only when called. With
    `shop_checks`, the shop checks' verdicts are kept there and reused (see decide)."""
    merchant = request.merchant
    pocket_rules = pocket.rules
    return (
        lambda: rules.check_validity(pocket_rules, request.at),
        lambda: rules.check_schedule(pocket_rules.schedule, request.at, merchant.departement),
        lambda: _kept(shop_checks, rules.check_categories, pocket_rules.categories, merchant.mcc),
        lambda: _kept(shop_checks, rules.check_merchant, pocket_rules.merchants, merchant),
        lambda: _kept(shop_checks, rules.check_zone, pocket_rules.zone, merchant),
        lambda: rules.check_products(pocket_rules, request.lines),
        lambda: rules.check_limits(pocket_rules.limits, payable(pocket, request), pocket.usage),
    )


def _kept(
    shop_checks: ShopChecks | None,
    check: Callable[[Any, Any], Verdict],
    rule: object,
    subject: object,
) -> Verdict:
    """check(rule, subject), kept in `shop_checks` when given: a shop check depends on the
    rule and the shop only."""
    if shop_checks is None:
        return check(rule, subject)
    key = (check, rule, subject)
    verdict = shop_checks.get(key)
    if verdict is None:
        verdict = shop_checks[key] = check(rule, subject)
    return verdict


def payable(pocket: PocketState, request: AuthorizationRequest) -> int:
    """The part of the amount the pocket's rules would pay: the lines it pays for."""
    if not request.lines:
        return request.amount
    return sum(line.amount for line in request.lines if pocket.rules.pays_for(line.category))


def evaluate(
    pocket: PocketState, request: AuthorizationRequest, shop_checks: ShopChecks | None = None
) -> tuple[int, Verdict]:
    """The pocket's verdict, with the index in STAGES of the check that refused it
    (len(STAGES) when eligible)."""
    for stage, check in enumerate(_checks(pocket, request, shop_checks)):
        verdict = check()
        if not verdict.eligible:
            return stage, verdict
    return len(STAGES), verdict


SHOP_STAGES = tuple(STAGES.index(name) for name in ("categories", "merchants", "zone"))


def _shop_fit(
    pocket: PocketState, request: AuthorizationRequest, stage: int, shop_checks: ShopChecks | None
) -> int:
    """How many of the shop checks the pocket passes before the first that fails, in their
    order (len(SHOP_STAGES) when the pocket is meant for this shop). `stage` is the pocket's
    from evaluate(): the shop checks it did not reach, stopped by its validity or schedule, are
    run here."""
    checks = _checks(pocket, request, shop_checks)
    for passed, shop_stage in enumerate(SHOP_STAGES):
        if shop_stage == stage or (shop_stage > stage and not checks[shop_stage]().eligible):
            return passed
    return len(SHOP_STAGES)


_UNLIMITED = 2**63  # the merchant count of a pocket without a merchant allow list


def restrictiveness(pocket_rules: PocketRules) -> tuple[int, int, int]:
    """Smaller is narrower: (merchants it may pay, merchant category codes it may pay, zone
    breadth), compared in that order. A merchant allow list counts its merchants (no list: more
    than any list); the category count is that of the allow list (no list: all 10,000 codes);
    the zone breadth is 0 for towns, postcodes and circles, 1 for départements, 2 for countries,
    3 for no zone, and a zone is as broad as its broadest part. Schedules and limits do not
    make a pocket narrower: they decide when and how much, not where."""
    allow = pocket_rules.merchants.allow
    merchants = len(allow) if allow is not None else _UNLIMITED
    rule = pocket_rules.categories
    codes = rule.allowed_count if rule.has_allow_list else categories.MCC_COUNT
    return merchants, codes, _zone_breadth(pocket_rules.zone)


def _zone_breadth(zone: ZoneRule | None) -> int:
    if zone is None:
        return 3
    if zone.countries:
        return 2
    # A two-digit postcode prefix is a whole département; a département with its neighbours is
    # wider than one, but still regional, not national.
    if (
        zone.departements
        or zone.departements_with_neighbours
        or any(len(p) <= 2 for p in zone.postcode_prefixes)
    ):
        return 1
    return 0


def split_key(pocket: PocketState) -> tuple[bool, float, tuple[int, int, int], float, int]:
    # Instants as timestamps: aware datetimes of one tzinfo compare by wall clock in Python.
    until = pocket.rules.valid_until
    return (
        until is None,
        until.timestamp() if until else 0.0,
        restrictiveness(pocket.rules),
        pocket.created_at.timestamp(),
        pocket.pocket_id,
    )


def contribution_cap(pocket: PocketState, verdict: Verdict) -> int:
    """The most an eligible pocket can pay: its balance, bounded by its limits."""
    cap = max(pocket.available, 0)
    return cap if verdict.capacity is None else min(cap, verdict.capacity)


def decide(
    request: AuthorizationRequest,
    pockets: Sequence[PocketState],
    *,
    shop_checks: ShopChecks | None = None,
) -> Outcome:
    """Approve, approve in part, or decline the request with the wallet's pockets.

    `shop_checks`, a dict the caller keeps across calls, keeps the verdicts of the shop checks
    (categories, merchant lists, zone), which depend on the rule and the shop only: a rule dry
    run decides a million payments at the same few shops with the same few rule sets."""
    amount = request.amount
    if amount <= 0:
        return _declined("invalid_amount", {"amount": amount}, None, ())
    if amount > MAX_AMOUNT:
        return _declined("amount_too_large", {"amount": amount, "max": MAX_AMOUNT}, None, ())

    results: dict[int, tuple[int, Verdict]] = {}
    traces = []
    for pocket in pockets:
        if pocket.currency == request.currency:
            results[pocket.pocket_id] = evaluate(pocket, request, shop_checks)
            verdict = results[pocket.pocket_id][1]
        else:
            verdict = Verdict(False, "currency_not_supported", {"currency": pocket.currency})
        traces.append(PocketVerdict(pocket.pocket_id, verdict))
    verdicts = tuple(traces)

    candidates = sorted((p for p in pockets if p.pocket_id in results), key=split_key)
    if not candidates:
        reason = "currency_not_supported" if pockets else "no_aid_available"
        return _declined(reason, {"currency": request.currency}, None, verdicts)

    eligible = [p for p in candidates if results[p.pocket_id][1].eligible]
    split, shares = _split(eligible, results, request)
    covered = sum(amount for _, amount in split)
    lines = shares if request.lines else ()
    by_id = {p.pocket_id: p for p in eligible}
    named = (
        tuple(Share(pid, by_id[pid].name, by_id[pid].funder_name, amt) for pid, amt in split)
        if request.lines
        else ()
    )
    eligible_amount = (
        sum(
            line.amount
            for line in request.lines
            if any(p.rules.pays_for(line.category) for p in eligible)
        )
        if request.lines
        else None
    )

    if covered == amount:
        return Outcome(
            "approved", amount, None, {}, None, verdicts, split, lines, eligible_amount, named
        )
    unpaid = tuple(LineShare(share.line, ()) for share in lines)
    if covered == 0:
        reason, details, pocket_name = _closest_refusal(candidates, results, request, shop_checks)
        return _declined(reason, details, pocket_name, verdicts, unpaid, eligible_amount)

    reason, details, pocket_name = _shortfall(eligible, results, request, covered)
    if eligible_amount is not None and eligible_amount < amount:
        # What is left includes lines no eligible aid pays for: that is what the shop and the
        # person can act on (pay those another way), whatever else held an aid back.
        families = [s.line.category for s in shares if s.rest and s.line.amount > 0]
        not_paid = [
            f for f in dict.fromkeys(families) if not any(p.rules.pays_for(f) for p in eligible)
        ]
        reason, details = "product_not_covered", {"families": not_paid}
        pocket_name = _only_name(eligible)
    if request.partial_allowed:
        return Outcome(
            "partially_approved",
            covered,
            reason,
            details,
            pocket_name,
            verdicts,
            split,
            lines,
            eligible_amount,
            named,
        )
    return _declined(reason, details, pocket_name, verdicts, unpaid, eligible_amount)


def _split(
    eligible: list[PocketState],
    results: dict[int, tuple[int, Verdict]],
    request: AuthorizationRequest,
) -> tuple[tuple[tuple[int, int], ...], tuple[LineShare, ...]]:
    """Who pays what: the split by pocket, in the order used, and by line (see the module
    docstring). Greedy: each pocket takes up to its cap, in split order."""
    basket = request.lines or (BasketLine(request.amount, "other"),)
    everything = not request.lines  # without lines every pocket pays the one line
    left = [line.amount for line in basket]
    paid: list[list[tuple[int, int]]] = [[] for _ in basket]
    split = []
    for index, pocket in enumerate(eligible):
        later = eligible[index + 1 :]

        # How many pockets after this one could pay each line: the scarcer go first.
        others = [sum(p.rules.pays_for(line.category) for p in later) for line in basket]

        accepted = [
            i for i in range(len(basket)) if everything or pocket.rules.pays_for(basket[i].category)
        ]
        cap = contribution_cap(pocket, results[pocket.pocket_id][1])
        taken = 0
        for i in sorted(accepted, key=lambda i: (0 if everything else others[i], i)):
            take = min(left[i], cap - taken)
            if take > 0:
                paid[i].append((pocket.pocket_id, take))
                left[i] -= take
                taken += take
        if taken > 0:
            split.append((pocket.pocket_id, taken))
    shares = tuple(LineShare(line, tuple(p)) for line, p in zip(basket, paid, strict=True))
    return tuple(split), shares


def _declined(
    reason: str,
    details: JSONDict,
    pocket_name: str | None,
    verdicts: tuple[PocketVerdict, ...],
    lines: tuple[LineShare, ...] = (),
    eligible_amount: int | None = None,
) -> Outcome:
    return Outcome(
        "declined", 0, reason, details, pocket_name, verdicts, (), lines, eligible_amount
    )


def _shortfall(
    eligible: list[PocketState],
    results: dict[int, tuple[int, Verdict]],
    request: AuthorizationRequest,
    covered: int,
) -> tuple[str, JSONDict, str | None]:
    balances = sum(max(p.available, 0) for p in eligible)
    if balances >= request.amount:
        # Some pocket paid less than its balance: the first one, in split order, a limit held.
        for pocket in eligible:
            verdict = results[pocket.pocket_id][1]
            if contribution_cap(pocket, verdict) < max(pocket.available, 0):
                details = {**verdict.details, "currency": request.currency}
                return "limit_exceeded", details, pocket.name
    details = {"available": covered, "amount": request.amount, "currency": request.currency}
    return "insufficient_funds", details, _only_name(eligible)


def _closest_refusal(
    candidates: list[PocketState],
    results: dict[int, tuple[int, Verdict]],
    request: AuthorizationRequest,
    shop_checks: ShopChecks | None,
) -> tuple[str, JSONDict, str | None]:
    def rank(pocket: PocketState) -> tuple[int, bool, int]:
        stage = results[pocket.pocket_id][0]
        return -_shop_fit(pocket, request, stage, shop_checks), pocket.available <= 0, -stage

    # `candidates` is in split order and min() keeps the first of equals: ties go to it.
    closest = min(candidates, key=rank)
    verdict = results[closest.pocket_id][1]
    if verdict.eligible:  # an eligible pocket that paid nothing is empty
        details = {"available": 0, "amount": request.amount, "currency": request.currency}
        return "insufficient_funds", details, closest.name
    assert verdict.reason is not None  # a refused verdict always names its reason
    details = dict(verdict.details)
    if verdict.reason == "limit_exceeded":
        details["currency"] = request.currency
    return verdict.reason, details, closest.name


def _only_name(pockets: list[PocketState]) -> str | None:
    return pockets[0].name if len(pockets) == 1 else None
