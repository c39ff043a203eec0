import pytest
from django.conf import settings

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# Concurrency is proven on PostgreSQL with real concurrent clients; SQLite serialises every
# writer, so these tests would prove nothing there.
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="concurrency is proven on PostgreSQL (set DATABASE_URL)"
)

# PostgreSQL's UPPER() folds Unicode look-alikes (the dotless i U+0131 to I, the long s U+017F
# to S), which SQLite's does not: only there can the look-alike address tests fail, as they
# must before their fix.
postgresql_case_folding = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="PostgreSQL's Unicode case folding is tried (set DATABASE_URL)"
)

# statement_timeout is PostgreSQL's: SQLite has no bound on a query to try.
postgresql_statement_timeout = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="PostgreSQL's statement_timeout is tried (set DATABASE_URL)"
)
