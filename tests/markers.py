import pytest
from django.conf import settings

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# Concurrency is proven on PostgreSQL with real concurrent clients; SQLite serialises every
# writer, so these tests would prove nothing there.
postgresql_only = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="concurrency is proven on PostgreSQL (set DATABASE_URL)"
)
