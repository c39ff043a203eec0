"""bench/crash.py at a tiny size, so that it cannot rot: PostgreSQL's postmaster gets SIGKILL
in the middle of a load, and every payment retried with its key is recorded once."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench import pgcluster
from tests.markers import postgresql_only

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("CELERY_BROKER_URL", "")


@postgresql_only
@pytest.mark.skipif(
    not pgcluster.available(), reason="needs PostgreSQL's server programs (initdb, pg_ctl)"
)
@pytest.mark.skipif(
    not BROKER.startswith("redis://"), reason="needs a Redis broker (CELERY_BROKER_URL)"
)
def test_the_crash_benchmark_survives_a_postgresql_crash_at_a_tiny_size():
    # The run's broker is the tests' (CELERY_BROKER_URL), its cache a neighbouring Redis
    # database: the benchmark empties both first. Redis has databases 0-15 by default and CI's
    # broker is the last one, so the neighbour below it when there is none above.
    broker = urlsplit(BROKER)
    index = int(broker.path.strip("/") or 0)
    cache = urlunsplit(broker._replace(path=f"/{index + 1 if index < 15 else index - 1}"))
    command = [
        sys.executable, "-m", "bench.crash", "--crash", "postgres",
        "--clients", "3", "--wallets", "10", "--workers", "2",
        "--kill-at", "2", "--down", "1", "--after", "2",
        "--broker-url", BROKER, "--cache-url", cache,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SIGKILL the PostgreSQL postmaster" in output
    # Requests came while it was down, and were answered 503 to retry.
    assert re.search(r"'HTTP 503': [1-9]", output), output
    assert "/readyz while down: 503 database fail" in output
    # Ready but for the Celery heartbeat, which no beat sends in this run.
    assert re.search(r"/readyz once restarted: (200|503), database ok", output), output
    assert re.search(r"authorize +(\d+) asked, +\1 recorded", output), output
    assert "ledger verify: every invariant holds" in output
    assert "RESULT: ok" in output
