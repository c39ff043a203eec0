"""Issue 19 (BENCHMARKS.md, part 10): a decision's JSON compressed with lz4 instead of pglz.

Every payment writes a decision whose row (the trace, 1.5 kB of jsonb with its three pockets'
verdicts and snapshots, and the request) is past PostgreSQL's 2 kB threshold: the trace is
compressed inline at each insert, by pglz unless the column says otherwise. lz4 compresses it
to about the same size (720 bytes against 660) in a fraction of pglz's processor time, and
reads it back faster too (the exports and dry runs read the trace). Rows written before keep
pglz; PostgreSQL reads both.

PostgreSQL only (SQLite has no such setting, nor Django's models an option for it, hence SQL),
and only where the server was built with lz4 (Debian's and the official images are): a server
without it keeps pglz, the migration then changes nothing."""

from django.db import NotSupportedError, migrations, transaction

_COLUMNS = ("trace", "request")


def _compression(schema_editor, method: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    alters = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in _COLUMNS)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(f"ALTER TABLE wallet_decision {alters}")
    except NotSupportedError:
        # "compression method lz4 not supported": a server built without it keeps pglz.
        pass


def to_lz4(apps, schema_editor):
    _compression(schema_editor, "lz4")


def to_pglz(apps, schema_editor):
    _compression(schema_editor, "pglz")


class Migration(migrations.Migration):
    dependencies = [("wallet", "0021_td19_capture_notice_next_attempt")]

    operations = [migrations.RunPython(to_lz4, to_pglz, elidable=False)]
