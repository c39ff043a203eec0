"""bench/two_servers.py with its files in an S3 bucket, so that the proof cannot rot: two
gunicorn servers and a Celery worker, each with a local directory of its own, share only the
database, Redis and a fake S3 server; a file built behind one is served by the other."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.harness import drop_database
from tests.markers import postgresql_only

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("CELERY_BROKER_URL", "")


@postgresql_only
@pytest.mark.skipif(
    not BROKER.startswith("redis://"), reason="needs a Redis broker (CELERY_BROKER_URL)"
)
def test_a_file_built_behind_one_server_is_served_by_the_other_from_the_bucket():
    # A database of the run's own beside the tests' (the benchmark drops and creates it), the
    # tests' broker, and its neighbouring Redis database as the cache (see tests/bench/test_crash).
    tests = urlsplit(os.environ["DATABASE_URL"])
    url = urlunsplit(tests._replace(path=f"/bench_two_{tests.path.strip('/')}"))
    broker = urlsplit(BROKER)
    index = int(broker.path.strip("/") or 0)
    cache = urlunsplit(broker._replace(path=f"/{index + 1 if index < 15 else index - 1}"))
    command = [
        sys.executable, "-m", "bench.two_servers", "--storage", "s3", "--workers", "1",
        "--broker-url", BROKER, "--cache-url", cache,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        drop_database(url)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "FAILED" not in output
    for line in (
        "ok: the allocations file downloaded through B (200)",
        "ok: the statement file downloaded through A (200)",
        "ok: the logo served by A (200)",
        "ok: the logo served by B (200)",
    ):
        assert line in output
    assert "ok: the allocations file is the bucket's object exports/" in output
    assert "RESULT: ok" in output
