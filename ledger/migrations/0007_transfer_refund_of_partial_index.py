"""Issue 19 (BENCHMARKS.md, part 10): the index on a transfer's refund_of only where it is set.

Every transfer but a refund has none, each payment's hold first: the full index took a NULL
entry (and its WAL) from every one of them, for readers that only ever ask for a capture's
refunds by its id (ledger/spending.py's HOLD_NETS, verify, the shop's refunds), which the
partial index serves: `refund_of_id = <id>` implies it is not NULL."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0006_eb19_hot_updates"),
    ]

    operations = [
        migrations.AlterField(
            model_name="transfer",
            name="refund_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="ledger.transfer",
            ),
        ),
        migrations.AddIndex(
            model_name="transfer",
            index=models.Index(
                condition=models.Q(("refund_of__isnull", False)),
                fields=["refund_of"],
                name="transfer_refund_of_idx",
            ),
        ),
    ]
