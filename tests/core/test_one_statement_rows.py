"""core/one_statement.py's cheaper ways to the same rows (issue 19): new_row() builds the
instance Model(**values) builds, and an int is sent as Django's get_db_prep_save sends it."""

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.utils import timezone
from psycopg.types.numeric import Int4, Int8

from core.one_statement import _sent_as, new_row
from ledger.models import Transfer
from tests.markers import postgresql_only
from wallet.models import Wallet
from wallet.models.decisions import Decision, DecisionHold

VALUES = {
    "idempotency_key": "api:1:k",
    "fingerprint": "f" * 64,
    "channel": "api",
    "merchant_id": 7,
    "amount": 1_250,
    "currency": "EUR",
    "status": "approved",
    "approved_amount": 1_250,
    "details": {},
    "metadata": {"till": "3"},
    "request": {"amount": 1_250},
    "trace": {"split": []},
    "duration_us": 412,
}


def test_new_row_is_the_row_the_keyword_path_builds():
    wallet = Wallet(pk=41)
    at = timezone.now()
    ours = new_row(Decision, wallet=wallet, card=None, decided_at=at, **VALUES)
    theirs = Decision(wallet=wallet, card=None, decided_at=at, **VALUES)

    fields = [f.attname for f in Decision._meta.concrete_fields if f.name != "reference"]
    assert [getattr(ours, name) for name in fields] == [getattr(theirs, name) for name in fields]
    assert ours.wallet is wallet  # cached, as the keyword path caches it: no query
    assert ours.reference.startswith("auth_") and ours.reference != theirs.reference  # defaults
    assert ours.livemode is True and ours.pk is None
    assert ours._state.adding and ours._state.db is None  # saved as new, never as an update


def test_new_row_keeps_an_unsaved_target_for_the_statement_to_find():
    decision = Decision(**VALUES)
    hold = Transfer(amount=1_250)
    row = new_row(DecisionHold, decision=decision, pocket_id=3, hold=hold, amount=1_250)

    assert DecisionHold.decision.field.get_cached_value(row) is decision
    assert row.decision_id is None and row.hold_id is None and row.pocket_id == 3


def test_new_row_refuses_a_name_the_model_does_not_have():
    with pytest.raises(FieldDoesNotExist):
        new_row(DecisionHold, decisoin_id=1)


@postgresql_only
def test_an_int_is_sent_as_django_sends_it():
    for model in (Decision, Transfer, DecisionHold):
        for field in model._meta.concrete_fields:
            kinds, wrap = _sent_as(field, connection)
            if int not in kinds:
                continue
            expected = field.get_db_prep_save(1_250, connection)
            sent = 1_250 if wrap is None else wrap(1_250)
            assert type(sent) is type(expected) and sent == expected, field

    assert _sent_as(Decision._meta.get_field("amount"), connection) == ((int,), Int8)
    assert _sent_as(Decision._meta.get_field("duration_us"), connection) == ((int,), Int4)
    assert _sent_as(Decision._meta.get_field("wallet"), connection) == ((int, type(None)), None)
    assert _sent_as(Decision._meta.get_field("decided_at"), connection) == ((), None)
