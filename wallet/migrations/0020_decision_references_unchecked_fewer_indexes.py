"""Issue 19: fewer checks and indexes written by every payment (BENCHMARKS.md, part 7).

- decisionhold.decision, decisionhold.hold, decisionnotice.decision: no foreign key constraint,
  each was a deferred check at the payment's COMMIT; their targets are inserted with them and
  immutable (see the models; tests/merchant_api/test_decision_references.py).
- wallet_decision_reference_9ab34617_like dropped: no query looks a decision's reference up by
  prefix (the API and the admin look it up whole, or with icontains, which cannot use it); the
  unique index on the reference stays.
"""

import django.db.models.deletion
from django.db import migrations, models

# Django makes this pattern index for every unique CharField on PostgreSQL; it has no option to
# leave it out, hence SQL. SQLite has none.
_LIKE = "wallet_decision_reference_9ab34617_like"


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {_LIKE}")


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_LIKE} ON wallet_decision "
            "(reference varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_merge_of_this_rounds_branches"),
        ("wallet", "0019_decision_notice_retries"),
    ]

    operations = [
        migrations.AlterField(
            model_name="decisionhold",
            name="decision",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="holds",
                to="wallet.decision",
            ),
        ),
        migrations.AlterField(
            model_name="decisionhold",
            name="hold",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="decision_hold",
                to="ledger.transfer",
            ),
        ),
        migrations.AlterField(
            model_name="decisionnotice",
            name="decision",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="notice",
                serialize=False,
                to="wallet.decision",
                verbose_name="authorization decision",
            ),
        ),
        migrations.RunPython(drop_like_index, create_like_index, elidable=False),
    ]
