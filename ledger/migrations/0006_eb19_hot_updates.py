"""Issue 19 (BENCHMARKS.md, part 8): room left in the pages of the two tables every payment
updates in place, so that the update finds room in the row's own page and is a HOT update,
which adds no entry to any of the table's indexes.

- ledger_spending (each hold moves its pocket's day, month and year rows): pages half free.
  Filled, fewer than half its updates were HOT (300 to 1,403 of 3,231 in bench.authorize's
  2,000 payments), each other one adding an entry to both its indexes. Its rows are short and
  few (a few per account and period).
- wallet_account (each hold moves its pocket's `pending`): a fifth of each page free. Filled,
  715 of 1,970 were HOT in the same runs; every other one added an entry to its three indexes.

Pages already written keep what they hold until rewritten; new ones are filled to the factor.
Storage only: SQLite has no such parameter, nor Django's models an option for it, hence SQL."""

from django.db import migrations

# (table, fillfactor)
_TABLES = (("ledger_spending", 50), ("wallet_account", 80))


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, fillfactor in _TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def fill_whole(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, _ in _TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_spending_per_period")]

    operations = [migrations.RunPython(leave_room, fill_whole, elidable=False)]
