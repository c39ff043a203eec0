"""core/prepared.py's statements prepared by name (SQL's PREPARE) and run as `EXECUTE name(...)`
with their values as literals, the COMMIT in the same message (issue 19): every type the hot
path sends comes back as the extended protocol's binding gives it; an error in the statement or
at its COMMIT is Django's IntegrityError and leaves the transaction ended or to roll back; the
names kept per connection stay true to what PostgreSQL holds."""

import datetime
import decimal
import json
import threading
import uuid
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from django.db import (
    DataError,
    IntegrityError,
    ProgrammingError,
    connection,
    models,
    transaction,
)
from django.test.utils import CaptureQueriesContext
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg.types.numeric import Int2, Int4, Int8

from core import prepared
from core.one_statement import OneStatement
from core.prepared import prepared_cursor, statement_run
from merchants.models.webhooks import WebhookEvent
from tests.connections import messages_sent
from tests.factories import make_merchant
from tests.markers import postgresql_only
from wallet.models.decisions import Decision

pytestmark = [postgresql_only]

AT = datetime.datetime(2026, 12, 7, 5, 1, 2, 345678, tzinfo=datetime.UTC)


class Size(models.IntegerChoices):
    LARGE = 3


# One value of every type the hot path's statements send, with a cast where PostgreSQL cannot
# tell the type from the statement (a str or a None is sent as "unknown").
VALUES = [
    (0, "%s"),
    (-(2**63), "%s"),
    (2**63 - 1, "%s"),
    (Int4(-7), "%s"),
    (Int8(2**40), "%s"),
    (True, "%s"),
    ("l'épicerie \\ «ouest» \u2028 %s $1", "%s::text"),
    ("", "%s::text"),
    (None, "%s::text"),
    (None, "%s::bigint"),
    (AT, "%s"),
    (AT.astimezone(ZoneInfo("Europe/Paris")), "%s"),
    (datetime.datetime(2026, 3, 29, 2, 30), "%s"),  # naive: a timestamp
    (datetime.date(2026, 2, 28), "%s"),
    (Jsonb({"a": [1, "x'y", None, {"b": 0.1}], "é": 2**70}), "%s"),
    ([1, -2, 2**40], "%s::bigint[]"),
    (["a", "b'c", None], "%s::text[]"),
    ([], "%s::bigint[]"),
    (b"\x00\x01'\\\xff", "%s"),
    (decimal.Decimal("-12.3400"), "%s"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "%s"),
    # What the write sends most: a jsonb with orjson's dumps (core/one_statement.py), a choice.
    (Jsonb({"why": "l'aide \\ «x»", "n": [1, None]}, dumps=orjson.dumps), "%s"),
    (Decision.Status.APPROVED, "%s::text"),
    (Decision.Channel.CARD, "%s::text"),
    (Int2(-3), "%s"),
    (Size.LARGE, "%s"),
]


def bound_on_the_server(sql: str, params: list) -> tuple:
    """What psycopg's own binding (the extended protocol, every int a bigint) reads back."""
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_dumper(int, psycopg.types.numeric.Int8Dumper)
        cursor.execute(sql, params, prepare=False)
        return cursor.fetchone()


@pytest.mark.django_db
def test_every_type_sent_comes_back_as_the_servers_binding_gives_it():
    sql = "SELECT " + ", ".join(
        f"{cast}, pg_typeof({cast})::text, ({cast})::text" for _, cast in VALUES
    )
    params = [value for value, _ in VALUES for _ in range(3)]

    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        ours = cursor.fetchone()
        cursor.execute(sql, params)  # the statement prepared, then run by name
        again = cursor.fetchone()

    assert ours == again == bound_on_the_server(sql, params)
    read = ours[0::3]
    assert read[0:3] == (0, -(2**63), 2**63 - 1)
    assert read[6] == VALUES[6][0] and read[8] is None and read[9] is None
    assert read[10] == AT and read[11] == AT
    assert json.loads(read[14]) == {"a": [1, "x'y", None, {"b": 0.1}], "é": 2**70}
    assert read[18] == b"\x00\x01'\\\xff"
    assert ours[1::3][0] == "bigint" and ours[1::3][10] == "timestamp with time zone"


@pytest.mark.django_db
def test_a_row_written_by_name_is_the_row_django_writes():
    merchant = make_merchant()
    data = {"name": "l'épicerie", "lines": [{"amount": 100}], "at": "2026-12-07"}
    fields = {"type": "payment.approved", "data": data, "payload": '{"a": "b\\\\c"}'}
    fields |= {"created_at": AT, "request_id": "req'1"}
    by_django = WebhookEvent.objects.create(merchant=merchant, **fields)
    writes = OneStatement()
    ours = WebhookEvent(merchant=merchant, **fields)
    writes.insert(ours)
    writes.run()

    columns = [
        f.column for f in WebhookEvent._meta.concrete_fields if f.column not in {"id", "reference"}
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f'{column}::text' for column in columns)} "
            "FROM merchants_webhookevent WHERE id IN (%s, %s) ORDER BY id",
            [by_django.pk, ours.pk],
        )
        django_row, our_row = cursor.fetchall()
    assert our_row == django_row


def status() -> TransactionStatus:
    return connection.connection.info.transaction_status


@pytest.mark.django_db(transaction=True)
def test_the_write_and_its_commit_go_in_one_message_and_the_block_ends_as_usual():
    merchant = make_merchant()
    committed = []
    with CaptureQueriesContext(connection) as sent, transaction.atomic():
        transaction.on_commit(lambda: committed.append(True))
        writes = OneStatement()
        event = WebhookEvent(merchant=merchant, type="x", data={}, payload="")
        writes.insert(event)
        writes.run(commit=True)
        assert status() == TransactionStatus.IDLE  # committed by the write's message

    assert committed == [True]
    assert WebhookEvent.objects.filter(pk=event.pk).exists()
    # One round trip for the write and its COMMIT (logged as the statement); Django's own
    # COMMIT after it finds the transaction ended (a no-op, logged by Django only).
    assert sum(query["sql"].startswith("WITH w0 AS (") for query in sent.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_refused_at_the_commit_is_an_integrity_error_and_nothing_is_kept():
    merchant = make_merchant()
    with pytest.raises(IntegrityError), transaction.atomic():
        writes = OneStatement()
        writes.insert(WebhookEvent(merchant=merchant, type="x", data={}, payload=""))
        writes.insert(WebhookEvent(merchant_id=-1, type="x", data={}, payload=""))  # deferred
        writes.run(commit=True)
    assert status() == TransactionStatus.IDLE
    assert not WebhookEvent.objects.exists()

    # The statement stays prepared (PostgreSQL keeps it through the rollback), and runs.
    with transaction.atomic():
        writes = OneStatement()
        writes.insert(WebhookEvent(merchant=merchant, type="x", data={}, payload=""))
        writes.insert(WebhookEvent(merchant=merchant, type="y", data={}, payload=""))
        writes.run(commit=True)
    assert WebhookEvent.objects.count() == 2


def names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_a_failed_first_run_is_prepared_again_only_if_postgresql_lost_it():
    merchant = make_merchant()
    sql = "INSERT INTO merchants_webhookevent (merchant_id, type, livemode, data, payload, "
    sql += "created_at, request_id, reference) VALUES (%s, 'x', true, '{}', '', now(), '', %s)"
    WebhookEvent.objects.create(merchant=merchant, type="x", data={}, payload="", reference="a")
    before = names()
    # Its first run, with its PREPARE, refused: the reference is unique.
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(sql, [merchant.pk, "a"])
    assert len(names()) == len(before) + 1
    before = names()

    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(sql, [merchant.pk, "ref_b"])
    assert names() == before  # found prepared (one lookup), not prepared again

    wrong = "SELECT no_such_column FROM merchants_webhookevent WHERE id = %s"
    with pytest.raises(ProgrammingError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(wrong, [1])
    # Looked up, not found, prepared again (and refused again).
    with pytest.raises(ProgrammingError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(wrong, [1])
    assert names() == before


@pytest.mark.django_db
def test_a_value_text_cannot_hold_is_djangos_data_error_and_leaves_the_statement_unnamed():
    # A NUL in a client's text (a Stripe event's id): refused before anything is sent, as
    # Django's DataError, which callers turn into a 4xx; the statement's next run prepares it.
    sql = "SELECT length(%s::text) + 0 * %s"
    before = names()
    with pytest.raises(DataError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(sql, ["evt_\x00", 1])
    assert names() == before

    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(sql, ["evt_1", 1])
        assert cursor.fetchone() == (5,)
    assert len(names()) == len(before) + 1


@pytest.mark.django_db(transaction=True)
def test_past_its_bound_the_least_recently_run_is_deallocated(monkeypatch):
    monkeypatch.setattr(prepared, "PREPARED_MAX", 2)
    with prepared_cursor() as cursor:
        for n in range(5):
            cursor.execute(f"SELECT %s + {n}", [10])
            assert cursor.fetchone() == (10 + n,)
        cursor.execute("SELECT %s + 4", [1])
        assert cursor.fetchone() == (5,)
    assert len(names()) == 2


@pytest.mark.django_db(transaction=True)
def test_statements_dropped_behind_its_back_fail_one_transaction_then_are_prepared_again():
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s * 2", [21])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")

    with pytest.raises(ProgrammingError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("SELECT %s * 2", [21])
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s * 2", [21])
        assert cursor.fetchone() == (42,)


@pytest.mark.django_db(transaction=True)
def test_with_prepared_statements_off_the_write_and_its_commit_still_go_in_one_message(
    monkeypatch,
):
    # PREPARED_STATEMENTS=false (a pooler in transaction mode keeps no session's PREPARE):
    # psycopg's prepare_threshold is None.
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    merchant = make_merchant()
    before = names()
    with CaptureQueriesContext(connection) as sent, transaction.atomic():
        writes = OneStatement()
        event = WebhookEvent(merchant=merchant, type="x", data={"a": "b'c"}, payload="")
        writes.insert(event)
        writes.run(commit=True)
        assert status() == TransactionStatus.IDLE

    assert WebhookEvent.objects.get(pk=event.pk).data == {"a": "b'c"}
    assert names() == before
    assert sum(query["sql"].startswith("WITH w0 AS (") for query in sent.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_statement_run_commits_in_its_message_only_from_the_outermost_block():
    table = WebhookEvent._meta.db_table
    with transaction.atomic():
        assert statement_run("SELECT %s::int + 1", [1], commit=True) == (2,)
        assert status() == TransactionStatus.IDLE  # committed by the statement's message
    with transaction.atomic(), transaction.atomic():
        assert (
            statement_run(f"UPDATE {table} SET type = %s WHERE false", ["x"], commit=True) is None
        )
        assert status() == TransactionStatus.INTRANS  # a savepoint's: the block commits
    assert status() == TransactionStatus.IDLE


# --- the transaction begun in its first statement's message -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_blocks_first_statement_begins_its_transaction_in_its_own_message():
    merchant = make_merchant()
    with messages_sent() as sent, pytest.raises(RuntimeError), transaction.atomic():
        assert statement_run("SELECT %s::int + 1", [1]) == (2,)
        assert status() == TransactionStatus.INTRANS
        WebhookEvent.objects.create(merchant=merchant, type="x", data={}, payload="")
        raise RuntimeError("rolled back")

    assert sent[0].startswith("BEGIN; PREPARE aidwallet_"), sent
    # No BEGIN of psycopg's: the ORM's insert ran in the transaction the message began.
    assert [message.split()[0] for message in sent[1:]] == ["INSERT", "ROLLBACK"], sent
    assert not WebhookEvent.objects.exists()
    assert connection.connection.autocommit  # outside a block, as Django leaves it
    # The next block that starts with the ORM has psycopg's own BEGIN, and commits.
    with messages_sent() as sent, transaction.atomic():
        WebhookEvent.objects.create(merchant=merchant, type="x", data={}, payload="")
    assert sent[0] == "BEGIN" and sent[-1] == "COMMIT", sent
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_first_message_that_fails_leaves_the_block_to_roll_back_and_the_next_one_begins():
    with pytest.raises(DataError), transaction.atomic():
        statement_run("SELECT 1 / %s", [0])
    assert status() == TransactionStatus.IDLE
    with messages_sent() as sent, transaction.atomic():
        assert statement_run("SELECT %s::int + 1", [2]) == (3,)
    assert sent[0].startswith("BEGIN; ") and sent[-1] == "COMMIT", sent


@pytest.mark.django_db(transaction=True)
def test_a_statement_after_a_lock_in_the_same_message_sees_what_the_lock_waited_for():
    """Each statement of a message takes its snapshot as it starts (READ COMMITTED): the read
    after the wallet's lock sees the payment that held the lock, as in a message of its own."""
    merchant = make_merchant(trade_name="before")
    table = merchant._meta.db_table
    holder = connection.copy()
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET trade_name = 'after' WHERE id = %s", [merchant.pk])
    found: list = []

    def pay() -> None:
        try:
            with transaction.atomic(), prepared_cursor() as cursor:
                cursor.execute_in_turn(
                    [
                        (f"SELECT trade_name FROM {table} WHERE id = %s FOR UPDATE", [merchant.pk]),
                        (f"SELECT trade_name FROM {table} WHERE id = %s", [merchant.pk]),
                    ]
                )
                found.append(cursor.fetchone())
                cursor.next_result()
                found.append(cursor.fetchone())
        finally:
            connection.close()

    waiting = threading.Thread(target=pay)
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive()  # the lock waits for the holder's transaction
    holder.commit()
    holder.close()
    waiting.join()
    assert found == [("after",), ("after",)]
