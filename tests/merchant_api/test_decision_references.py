"""The references a payment writes without a foreign key constraint (issue 19: a decision's
holds to their decision and hold, a decision's notice to its decision) always hold, on the
one-statement path and the portable one: the check the constraint made at each COMMIT, made
here on what the payments wrote."""

import uuid

import pytest
from django.db import connection

from wallet.models import Decision, DecisionNotice
from wallet.models.decisions import DecisionHold

pytestmark = pytest.mark.django_db(transaction=True)

# Each reference left without a constraint, and the rows of its table whose target is missing.
ORPHANS = {
    "decision hold -> decision": """
        SELECT h.id FROM wallet_decisionhold h
        LEFT JOIN wallet_decision d ON d.id = h.decision_id WHERE d.id IS NULL""",
    "decision hold -> hold": """
        SELECT h.id FROM wallet_decisionhold h
        LEFT JOIN wallet_transfer t ON t.id = h.hold_id WHERE t.id IS NULL""",
    "notice -> decision": """
        SELECT n.decision_id FROM wallet_decisionnotice n
        LEFT JOIN wallet_decision d ON d.id = n.decision_id WHERE d.id IS NULL""",
}


def orphans() -> dict[str, list]:
    with connection.cursor() as cursor:
        found = {}
        for name, sql in ORPHANS.items():
            cursor.execute(sql)
            found[name] = [row[0] for row in cursor.fetchall()]
    return found


@pytest.mark.parametrize("one_statement", [True, False])
def test_every_reference_a_payment_writes_holds(api, payment_code, settings, one_statement):
    settings.AUTHORIZE_ONE_STATEMENT = one_statement
    for amount in (500, 2_000, 1_000_000):  # approved twice, declined
        body = {"amount": amount, "currency": "EUR", "payment_code": payment_code()}
        assert api.send("/authorizations", body, key=str(uuid.uuid4())).status_code == 201

    assert DecisionHold.objects.count() == 2
    assert DecisionNotice.objects.count() == 3
    assert orphans() == {name: [] for name in ORPHANS}


def test_the_check_sees_a_missing_target(api, payment_code):
    body = {"amount": 500, "currency": "EUR", "payment_code": payment_code()}
    assert api.send("/authorizations", body, key=str(uuid.uuid4())).status_code == 201
    hold = DecisionHold.objects.get()
    # What no code path does, and no constraint stops any more: the check must see it.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE wallet_decisionhold SET hold_id = -1 WHERE id = %s", [hold.pk])
        cursor.execute(
            "UPDATE wallet_decisionnotice SET decision_id = -2 WHERE decision_id = %s",
            [Decision.objects.get().pk],
        )

    found = orphans()
    assert found == {
        "decision hold -> decision": [],
        "decision hold -> hold": [hold.pk],
        "notice -> decision": [-2],
    }
