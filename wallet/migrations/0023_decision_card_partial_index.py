"""Issue 19 (BENCHMARKS.md, part 10): the index on a decision's card only where it is set.

A payment through the merchant API has no card: the full index took a NULL entry (and its WAL)
from each of them, for readers that only ever ask for one card's decisions (`card_id = <id>`
implies it is not NULL, so the partial index serves them)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallet", "0022_decision_json_lz4"),
    ]

    operations = [
        migrations.AlterField(
            model_name="decision",
            name="card",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="decisions",
                to="wallet.card",
            ),
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                condition=models.Q(("card__isnull", False)),
                fields=["card"],
                name="decision_card_idx",
            ),
        ),
    ]
