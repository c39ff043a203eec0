"""bench/scale.py at a tiny size, so that it cannot rot: it builds its data in bulk, measures
every figure with its plan, and the ledger it built verifies and reconciles."""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

from bench.harness import drop_database
from tests.markers import postgresql_only

ROOT = Path(__file__).resolve().parents[2]


@postgresql_only
def test_the_scale_benchmark_runs_at_a_tiny_size():
    source = connection.settings_dict
    # A database of its own beside the tests' (the benchmark drops and creates it). The harness
    # refuses every test_* name, and CI's test database is test_test, so the prefix comes first.
    name = "bench_scale_" + source["NAME"]
    url = (
        f"postgres://{source['USER'] or 'postgres'}@{source['HOST'] or '127.0.0.1'}:"
        f"{source['PORT'] or 5432}/{name}"
    )
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.scale",
                "--scale",
                "0.0003",
                "--authorizations",
                "5",
                "--limit-seconds",
                "0",
            ],
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": url, "PGPASSWORD": source["PASSWORD"] or ""},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        drop_database(url)  # the benchmark keeps it (for --reuse); the tests leave nothing
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "built 300 people, 900 pockets, 3,000 decisions" in output
    figures = [
        "authorization, 5 on all 300 wallets",
        "dashboard rollup, first fold",
        "funder dashboard",
        "program dashboard, default period (after the sweep",
        "export payments",
        "export statement (csv, one day)",
        "campaign over 300 people",
        "reconciliation",
        "allocation expiry sweep",
    ]
    lines = output.splitlines()
    for figure in figures:
        assert any(line.startswith(figure) and "plan: " in line for line in lines), figure
    assert "ledger problems: 0; reconciliation failures: 0" in output
    assert "every invariant holds" in output
    assert "RESULT: ok" in output
