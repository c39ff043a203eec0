"""Invariants of decide() over generated wallets and requests."""

import random
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.time import PARIS
from engine.decide import PocketState, decide, evaluate, split_key
from engine.periods import Usage
from engine.request import AuthorizationRequest, MerchantPlace
from engine.rules import PocketRules, check_categories

NOW = datetime(2027, 3, 28, 10, 0, tzinfo=PARIS)  # a Sunday, the spring-forward day


def mostly_none(none_weight, options):
    """A rule section: absent `none_weight` times out of none_weight + len(options), so that
    most generated pockets are eligible and splits over several pockets are common."""
    return st.sampled_from([None] * none_weight + options)


# A few of each kind of rule, so that every check both passes and fails in the examples.
RULE_SECTIONS = {
    "schedule": mostly_none(
        6, [{"weekdays": [6]}, {"weekdays": [0, 1, 2, 3, 4]}, {"hours": [["09:00", "12:00"]]}]
    ),
    "categories": mostly_none(
        4,
        [
            {"allow_groups": ["food"]},
            {"allow_groups": ["restaurants"]},
            {"allow_mccs": ["5000-5999"], "block_mccs": ["5812"]},
            {"allow_cash": True},
        ],
    ),
    "merchants": mostly_none(6, [{"allow": [12]}, {"deny": [12]}, {"allow": [13]}]),
    "zone": mostly_none(
        3,
        [
            {"countries": ["FR"]},
            {"departements": ["38"]},
            {"departements": ["73"]},
            {"communes": ["38185"]},
            {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 5}]},
        ],
    ),
    "limits": mostly_none(
        1,
        [
            {"per_payment": 3000},
            {"day": 2500},
            {"week": 4000, "per_payment": 2000},
            {"validity": 10_000},
        ],
    ),
}

days = st.integers(min_value=-5, max_value=60).map(lambda n: NOW + timedelta(days=n))


WALLET_SIZES = st.integers(min_value=0, max_value=6)


@st.composite
def pockets(draw, sizes=WALLET_SIZES, sections=RULE_SECTIONS):
    count = draw(sizes)
    ids = draw(st.lists(st.integers(1, 1000), min_size=count, max_size=count, unique=True))
    result = []
    for pocket_id in ids:
        data = {key: draw(section) for key, section in sections.items()}
        valid_from = draw(st.sampled_from([None] * 5 + [NOW + timedelta(days=1)]))
        valid_until = draw(st.none() | days)
        if valid_from and valid_until and valid_until <= valid_from:
            valid_until = valid_from + timedelta(days=1)
        result.append(
            PocketState(
                pocket_id=pocket_id,
                name=f"Aid {pocket_id}",
                funder_name="Funder",
                rules=PocketRules.from_dict(
                    data,
                    valid_from=valid_from,
                    valid_until=valid_until,
                ),
                available=draw(st.integers(min_value=-100, max_value=8000)),
                currency=draw(st.sampled_from(["EUR"] * 7 + ["XPF"])),
                created_at=NOW - timedelta(days=draw(st.integers(0, 3))),
                usage=Usage(
                    draw(
                        st.dictionaries(
                            st.sampled_from(["day", "week", "validity"]),
                            st.integers(min_value=-500, max_value=3000),
                        )
                    )
                ),
            )
        )
    return result


merchants = st.builds(
    MerchantPlace,
    name=st.just("Shop"),
    mcc=st.sampled_from(["5411", "5411", "5411", "5812", "6011", "7011"]),
    country=st.sampled_from(["FR", "FR", "BE"]),
    merchant_id=st.sampled_from([None, 12, 12, 13]),
    postcode=st.sampled_from([None, "38000", "38000", "73000"]),
    commune_code=st.sampled_from([None, "38185"]),
)

requests = st.builds(
    AuthorizationRequest,
    amount=st.integers(min_value=-10, max_value=30_000),
    currency=st.just("EUR"),
    merchant=merchants,
    at=st.sampled_from([NOW, NOW, NOW, NOW + timedelta(hours=13)]),
    channel=st.sampled_from(["api", "card"]),
    partial_allowed=st.booleans(),
)


def caps(outcome, pockets_by_id):
    """What each eligible pocket could pay, computed from the trace, not by decide."""
    result = {}
    for trace in outcome.verdicts:
        if trace.verdict.eligible:
            available = max(pockets_by_id[trace.pocket_id].available, 0)
            capacity = trace.verdict.capacity
            result[trace.pocket_id] = available if capacity is None else min(available, capacity)
    return result


@settings(max_examples=400, deadline=None)
@given(requests, pockets())
def test_decide_invariants(request, wallet):
    outcome = decide(request, wallet)
    by_id = {p.pocket_id: p for p in wallet}
    eligible_caps = caps(outcome, by_id)

    # never more than asked, nor more than the eligible pockets can give
    assert 0 <= outcome.approved_amount <= max(request.amount, 0)
    assert outcome.approved_amount <= sum(eligible_caps.values())

    # the split: eligible pockets only, positive amounts, each within its cap, summing up
    assert sum(amount for _, amount in outcome.split) == outcome.approved_amount
    for pocket_id, amount in outcome.split:
        assert pocket_id in eligible_caps
        assert 0 < amount <= eligible_caps[pocket_id]
    assert len({pocket_id for pocket_id, _ in outcome.split}) == len(outcome.split)

    # the status tells the amount
    assert (outcome.status == "declined") == (outcome.approved_amount == 0)
    assert (outcome.status == "approved") == (outcome.approved_amount == request.amount > 0)
    if outcome.status == "partially_approved":
        assert request.partial_allowed
    assert (outcome.reason is None) == (outcome.status == "approved")


@settings(max_examples=400, deadline=None)
@given(requests, pockets())
def test_split_follows_the_documented_order(request, wallet):
    outcome = decide(request, wallet)
    by_id = {p.pocket_id: p for p in wallet}
    eligible_caps = caps(outcome, by_id)
    used = dict(outcome.split)

    # in split order, and a pocket is used only once every earlier one gave all it could
    order = sorted((by_id[pid] for pid, cap in eligible_caps.items() if cap > 0), key=split_key)
    assert [pid for pid, _ in outcome.split] == [p.pocket_id for p in order if p.pocket_id in used]
    if outcome.split:
        last = outcome.split[-1][0]
        for p in order[: [q.pocket_id for q in order].index(last)]:
            assert used.get(p.pocket_id) == eligible_caps[p.pocket_id]

    # a shortfall means every eligible pocket gave all it could
    if request.amount > 0 and outcome.approved_amount < request.amount and outcome.split:
        for p in order:
            assert used.get(p.pocket_id) == eligible_caps[p.pocket_id]


@settings(max_examples=200, deadline=None)
@given(requests, pockets(), st.randoms(use_true_random=False))
def test_the_order_of_the_pockets_given_does_not_matter(request, wallet, rnd: random.Random):
    shuffled = list(wallet)
    rnd.shuffle(shuffled)
    first, second = decide(request, wallet), decide(request, shuffled)
    assert (first.status, first.approved_amount, first.split, first.reason) == (
        second.status,
        second.approved_amount,
        second.split,
        second.reason,
    )
    assert first.pocket_name == second.pocket_name


# --- the aid a refusal names -------------------------------------------------------------------

valid_requests = requests.filter(lambda r: r.amount > 0)


@settings(max_examples=400, deadline=None)
@given(valid_requests, pockets().filter(bool))
def test_a_one_aid_wallet_is_refused_for_that_aids_first_failing_check(request, wallet):
    aid = wallet[0]
    outcome = decide(request, [aid])
    (trace,) = outcome.verdicts
    if aid.currency != request.currency:
        assert outcome.reason == "currency_not_supported"
    elif not trace.verdict.eligible:
        assert outcome.status == "declined"
        assert (outcome.reason, outcome.pocket_name) == (trace.verdict.reason, aid.name)
        assert evaluate(aid, request)[1] == trace.verdict


OTHER_KINDS_OF_SHOP = st.sampled_from(
    [
        {"allow_groups": ["transport"]},
        {"allow_groups": ["restaurants"]},
        {"allow_groups": ["food"]},
        {"allow_mccs": ["7011"]},
    ]
)


@st.composite
def wallet_and_aid_for_another_kind_of_shop(draw):
    """A wallet that holds an aid whose categories admit the shop, the request, and an aid whose
    categories exclude it."""
    request = draw(valid_requests)
    wallet = draw(pockets())
    assume(
        any(
            p.currency == request.currency
            and check_categories(p.rules.categories, request.merchant.mcc).eligible
            for p in wallet
        )
    )
    (other,) = draw(
        pockets(sizes=st.just(1), sections={**RULE_SECTIONS, "categories": OTHER_KINDS_OF_SHOP})
    )
    assume(other.pocket_id not in {p.pocket_id for p in wallet})
    assume(not check_categories(other.rules.categories, request.merchant.mcc).eligible)
    return request, wallet, replace(other, currency=request.currency)


@settings(max_examples=400, deadline=None)
@given(wallet_and_aid_for_another_kind_of_shop())
def test_an_aid_for_another_kind_of_shop_never_changes_the_answer(case):
    request, wallet, other = case
    without, with_it = decide(request, wallet), decide(request, [*wallet, other])
    assert (with_it.status, with_it.approved_amount, with_it.split) == (
        without.status,
        without.approved_amount,
        without.split,
    )
    assert (with_it.reason, with_it.details, with_it.pocket_name) == (
        without.reason,
        without.details,
        without.pocket_name,
    )


@settings(max_examples=200, deadline=None)
@given(valid_requests, pockets())
def test_every_aid_keeps_its_own_verdict_whichever_aid_is_named(request, wallet):
    outcome = decide(request, wallet)
    assert [trace.pocket_id for trace in outcome.verdicts] == [p.pocket_id for p in wallet]
    for pocket, trace in zip(wallet, outcome.verdicts, strict=True):
        if pocket.currency == request.currency:
            assert trace.verdict == evaluate(pocket, request)[1]
        else:
            assert trace.verdict.reason == "currency_not_supported"
