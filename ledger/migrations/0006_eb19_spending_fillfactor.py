"""Issue 19 (BENCHMARKS.md, part 8): ledger_spending's pages kept half free, so that each
payment's update of its pocket's day, month and year rows finds room in the row's own page and
is a HOT update, which writes no index entry. With pages filled, fewer than half were (1,403 of
3,231 in bench.authorize's 2,000 payments): every other one added an entry to both of the
table's indexes. The table is small (a few rows per account and period) and its rows short.

Storage only: SQLite has no such parameter, and Django's models none for it, hence SQL."""

from django.db import migrations


def fill_half(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ledger_spending SET (fillfactor = 50)")


def fill_whole(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ledger_spending RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_spending_per_period")]

    operations = [migrations.RunPython(fill_half, fill_whole, elidable=False)]
