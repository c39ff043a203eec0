"""The dry run's fast path (funders/dry_runs.py, _Replayer.approved_amount) answers exactly what
the engine's decide() answers on the same recorded request and balances: on real decisions of
wallets with three aids of different rules, and on thousands of variants of them (other
amounts, times, balances and spending), under several proposed rule sets."""

import os
import random
from datetime import datetime, timedelta

import orjson
import pytest
import time_machine
from django.db import connection

from core.time import PARIS
from engine.request import AuthorizationRequest, BasketLine
from funders import dry_runs
from funders.dry_runs import _Replayer, _rows, _scope, replay
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from wallet.authorize import authorize
from wallet.models import Decision

pytestmark = pytest.mark.django_db

START = datetime(2026, 10, 5, 9, tzinfo=PARIS)  # a Monday
FOOD = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"communes": ["38185", "38421"]},
    "schedule": {"weekdays": [0, 1, 2, 3, 4, 5], "hours": [["08:00", "20:00"]]},
    "limits": {"per_payment": 5_000, "day": 8_000},
}
PROPOSALS = [
    FOOD,
    {  # a cap lowered, a commune removed, Sundays and evenings allowed
        "categories": {"allow_groups": ["food"]},
        "zone": {"communes": ["38185"]},
        "limits": {"per_payment": 3_000, "week": 12_000},
    },
    {  # wider: restaurants too, a whole département, no schedule, public holidays refused
        "categories": {"allow_groups": ["food", "restaurants"]},
        "zone": {"departements": ["38"]},
        "schedule": {"refuse_public_holidays": True},
        "limits": {"month": 20_000},
    },
    {  # narrower: one shop, a circle, basket families
        "merchants": {"deny": [{"name": "Boulangerie", "postcode": "38400"}]},
        "zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 3}]},
        "products": {"allow": ["food"]},
        "limits": {"per_payment": 2_000, "validity": 15_000},
    },
]


@pytest.fixture
def decisions(funder, other_funder):
    rng = random.Random(22)
    food = make_program(funder=funder, rules=FOOD)
    # Another funder's aid in the same wallets: split with, never changed.
    other = make_program(
        funder=other_funder,
        rules={"categories": {"allow_groups": ["food", "restaurants"]}, "limits": {"day": 3_000}},
    )
    transport = make_program(funder=funder, rules={"categories": {"allow_groups": ["transport"]}})
    shops = [
        make_merchant(trade_name="Épicerie", mcc="5411", commune_code="38185"),
        make_merchant(
            trade_name="Boulangerie",
            mcc="5462",
            commune_code="38421",
            postcode="38400",
            latitude="45.2",
            longitude="5.77",
        ),
        make_merchant(trade_name="Brasserie", mcc="5812", commune_code="38185"),
        make_merchant(trade_name="Bus", mcc="4111", commune_code="73065", postcode="73000"),
    ]
    people = [BeneficiaryFactory() for _ in range(4)]
    for n, person in enumerate(people):
        make_allocation(
            program=food,
            beneficiary=person,
            amount=rng.randrange(5_000, 20_000),
            valid_from=START - timedelta(days=1),
            valid_until=START + timedelta(days=10 + n),
        )
        make_allocation(program=other, beneficiary=person, amount=4_000, valid_from=START)
        if n % 2:
            make_allocation(program=transport, beneficiary=person, amount=3_000, valid_from=START)
    for n in range(40):
        shop = rng.choice(shops)
        at = START + timedelta(hours=rng.randrange(0, 24 * 14), minutes=rng.randrange(60))
        amount = rng.randrange(100, 7_000)
        lines = ()
        if n % 5 == 0 and amount > 200:
            lines = (BasketLine(200, "hygiene"), BasketLine(amount - 200, "food"))
        with time_machine.travel(at, tick=False):
            authorize(
                request=AuthorizationRequest(
                    amount=amount,
                    currency="EUR",
                    merchant=merchant_place(shop),
                    at=at,
                    channel="api",
                    partial_allowed=rng.random() < 0.3,
                    lines=lines,
                ),
                wallet=rng.choice(people).wallet,
                credit_account=shop.payable_account,
                merchant_id=shop.pk,
                idempotency_key=f"fast-path-{n}",
            )
    return food


def recorded(program):
    wallets = _scope(program, None).values("wallet")
    rows = _rows(START - timedelta(days=1), START + timedelta(days=30), wallets)
    return [
        (orjson.loads(record), orjson.loads(snapshots))
        for _pk, _wallet, _approved, _reason, record, snapshots in rows
    ]


def variant(rng: random.Random, record: dict, snapshots: list) -> tuple[dict, list]:
    """The same shop and pockets, asked another amount at another time, with other balances
    and other spending so far."""
    at = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
    record = {
        **record,
        "amount": rng.choice([0, 1, rng.randrange(1, 9_000), 5_000, 8_000]),
        "at": at.isoformat(),
        "partial_allowed": rng.random() < 0.5,
    }
    record.pop("lines", None)
    snapshots = [
        {
            **snapshot,
            "available": rng.choice([0, -50, rng.randrange(0, 20_000)]),
            "usage": {
                period: rng.choice([0, -100, rng.randrange(0, 25_000)])
                for period in ("day", "week", "month", "year", "validity")
            },
        }
        for snapshot in snapshots
    ]
    return record, snapshots


@pytest.mark.parametrize("proposal", range(len(PROPOSALS)))
def test_the_fast_path_answers_what_decide_answers(decisions, proposal):
    program = decisions
    rows = recorded(program)
    assert (
        len(rows) == Decision.objects.filter(wallet__pockets__allocation__program=program).count()
    )
    assert any(record.get("lines") for record, _ in rows)
    replayer = _Replayer(program, PROPOSALS[proposal], None)
    replayer.load(_scope(program, None).values("wallet"))
    rng = random.Random(proposal)
    cases = rows + [variant(rng, *rng.choice(rows)) for _ in range(1_500)]
    approved = 0
    for record, snapshots in cases:
        expected = replayer.outcome(record, snapshots).approved_amount
        assert replayer.approved_amount(record, snapshots) == expected, record
        approved += expected > 0
    # Both answers occur, or agreeing would prove little.
    assert 0 < approved < len(cases)


def test_the_rules_in_force_replay_the_recorded_decisions(decisions):
    """Decided again with the rules they were decided with, nothing flips: the fast path and the
    snapshot together give back every recorded answer."""
    program = decisions
    result = replay(
        program=program,
        rules=FOOD,
        since=START - timedelta(days=1),
        until=START + timedelta(days=30),
    )
    assert result["replayed"] == result["decisions"] > 0
    assert result["flips"]["approved_to_refused"]["count"] == 0
    assert result["flips"]["refused_to_approved"]["count"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_window_split_between_processes_counts_the_same(decisions, monkeypatch):
    """On PostgreSQL, outside a transaction, a large window is replayed by forked processes
    (one per core), each reading its share of the ids: their counts add up to one pass's."""
    program = decisions
    window = {"since": START - timedelta(days=1), "until": START + timedelta(days=30)}
    one_pass = replay(program=program, rules=PROPOSALS[1], **window)
    monkeypatch.setattr(dry_runs, "PARALLEL_FROM", 1)
    parts = dry_runs._parts(one_pass["decisions"])
    if connection.vendor == "postgresql":
        assert parts == min(os.cpu_count() or 1, dry_runs.MAX_PARTS)
    progress = []
    split = replay(
        program=program,
        rules=PROPOSALS[1],
        progress=lambda done, total: progress.append((done, total)),
        **window,
    )
    assert split == one_pass
    assert one_pass["flips"]["approved_to_refused"]["count"] > 0
    done, total = progress[-1]
    assert done == total >= one_pass["decisions"]
