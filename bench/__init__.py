"""Benchmarks and proofs under load, run from the repository root as `python -m bench.<name>`.

Every script runs on the one harness of `bench.harness` (its own PostgreSQL database, gunicorn,
a Celery worker, `ledger verify` at the end, the machine's limit measured in the same run) and
builds its data with the tests' factories (`tests/factories.py`). BENCHMARKS.md has the figures
and the command of each run.
"""
