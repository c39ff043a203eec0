"""Issue 19: fewer indexes written by every payment (BENCHMARKS.md, part 7).

- idempotentresponse.merchant_id's index: the unique (merchant_id, key) index covers it.
- webhookdelivery.event_id's index: the unique (event_id, endpoint_id) index covers it.
- merchants_webhookevent_reference_20d1e236_like: no query looks an event's reference up by
  prefix (the admin's search is icontains, which cannot use it); the unique index stays.
"""

import django.db.models.deletion
from django.db import migrations, models

# Django makes this pattern index for every unique CharField on PostgreSQL; it has no option to
# leave it out, hence SQL. SQLite has none.
_LIKE = "merchants_webhookevent_reference_20d1e236_like"


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {_LIKE}")


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_LIKE} ON merchants_webhookevent "
            "(reference varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0010_webhook_event_request_id"),
    ]

    operations = [
        migrations.AlterField(
            model_name="idempotentresponse",
            name="merchant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="merchants.merchant",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="event",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deliveries",
                to="merchants.webhookevent",
            ),
        ),
        migrations.RunPython(drop_like_index, create_like_index, elidable=False),
    ]
