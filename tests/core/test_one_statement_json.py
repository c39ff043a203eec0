"""core/one_statement.py writes a JSONField's value with orjson (issue 19): PostgreSQL stores
the same jsonb as from Django's json.dumps, and what orjson would write otherwise, or refuses,
goes through the field's own encoder as Django sends it."""

import datetime
import decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

from core.one_statement import OneStatement, _json_dumps
from merchants.models.webhooks import WebhookEvent
from tests.factories import make_merchant
from tests.markers import postgresql_only

# Unicode beyond ASCII and a line separator, a float, an integer past 64 bits (orjson refuses
# it), nesting: the jsonb from both ways must be the same.
DATA = {
    "name": "Crêperie \u2028 «ouest»",
    "ratio": 0.1,
    "big": 2**70,
    "lines": [{"amount": 100, "ok": True, "none": None}, []],
}


@postgresql_only
@pytest.mark.django_db
def test_the_jsonb_written_is_the_same_as_djangos():
    merchant = make_merchant()
    by_django = WebhookEvent.objects.create(merchant=merchant, type="x", data=DATA, payload="")
    writes = OneStatement()
    ours = WebhookEvent(merchant=merchant, type="x", data=DATA, payload="")
    writes.insert(ours)
    writes.run()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data::text FROM merchants_webhookevent WHERE id IN (%s, %s) ORDER BY id",
            [by_django.pk, ours.pk],
        )
        (django_text,), (our_text,) = cursor.fetchall()
    assert our_text == django_text
    assert WebhookEvent.objects.get(pk=ours.pk).data == DATA


def test_what_orjson_would_write_otherwise_takes_the_fields_encoder():
    field = models.JSONField(encoder=DjangoJSONEncoder)
    field.set_attributes_from_name("data")
    dumps = _json_dumps(field)
    at = datetime.datetime(2026, 12, 6, 22, 0, tzinfo=datetime.UTC)
    value = {"at": at, "amount": decimal.Decimal("1.50"), "big": 2**70}

    assert dumps(value) == DjangoJSONEncoder().encode(value)
    assert dumps({"a": 1}) == b'{"a":1}'  # orjson's
    assert _json_dumps(models.TextField()) is None
