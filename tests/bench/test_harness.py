"""The benchmark harness's guards and its reading of pgbench: a benchmark drops its database,
so the name it is given is checked before anything runs; its open loop's schedule; its
stand-in for autovacuum's analyze."""

import time
from threading import Event

import psycopg
import pytest
from django.db import connection

from bench.harness import (
    Autoanalyze,
    Limit,
    backend_cpu_seconds,
    checked_database_url,
    due_times,
    p999,
)
from tests.connections import database_url
from tests.markers import postgresql_only


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres@127.0.0.1:5432/aidwallet_bench_http",
        "postgresql://postgres@localhost/bench_authorize",
    ],
)
def test_a_benchmark_database_of_this_machine_is_accepted(url):
    assert checked_database_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "sqlite:///db.sqlite3",
        "postgres://postgres@db.example.org:5432/aidwallet_bench",
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres://postgres@127.0.0.1:5432/test_aidwallet",
        "postgres://postgres@127.0.0.1:5432/postgres",
        "postgres://postgres@127.0.0.1:5432/template1",
        'postgres://postgres@127.0.0.1:5432/bench";drop',
    ],
)
def test_a_database_a_benchmark_must_not_drop_is_refused(url):
    with pytest.raises(SystemExit):
        checked_database_url(url)


def test_the_limit_is_read_from_pgbench_output():
    output = (
        "number of transactions actually processed: 2401\n"
        "latency average = 4.162 ms\n"
        "tps = 240.268500 (without initial connection time)\n"
    )

    limit = Limit.from_pgbench(output, clients=1, seconds=10)

    assert (limit.rate, limit.latency) == (240.2685, 0.004162)


def test_pgbench_output_without_figures_is_an_error():
    with pytest.raises(RuntimeError, match="no tps or latency"):
        Limit.from_pgbench("pgbench: error: connection refused\n", clients=1, seconds=10)


@postgresql_only
@pytest.mark.django_db
def test_the_servers_cpu_is_read_for_this_connection():
    # The harness reads the CPU of this connection's PostgreSQL process: a statement that only
    # burns the server's CPU moves it, and the reading never goes back.
    before = backend_cpu_seconds()
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(i::bigint * i) FROM generate_series(1, 5000000) AS i")
    after = backend_cpu_seconds()

    assert after - before > 0.05


def test_an_open_loop_client_is_handed_every_clients_th_due_time():
    start = time.perf_counter()

    dues = list(
        due_times(index=1, clients=3, rate=1_000, start=start, deadline=start + 0.01, stop=Event())
    )

    # Requests 1, 4 and 7 of the run (10 in 10 ms at 1,000/s), each handed once it is due.
    assert dues == pytest.approx([start + 0.001, start + 0.004, start + 0.007])
    assert time.perf_counter() >= dues[-1]


def test_an_open_loop_stops_when_told():
    stop = Event()
    stop.set()
    start = time.perf_counter()

    assert (
        list(due_times(index=0, clients=1, rate=1, start=start, deadline=start + 60, stop=stop))
        == []
    )


def test_the_99_9th_percentile():
    assert p999([0.3]) == 0.3
    assert p999([float(n) for n in range(10_001)]) == pytest.approx(9_990.0)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_table_grown_since_it_was_analyzed_empty_is_analyzed_again(monkeypatch):
    url = database_url()
    with psycopg.connect(url, autocommit=True) as setup:
        if setup.execute("SHOW autovacuum").fetchone()[0] == "on":
            assert Autoanalyze.start(url) is None  # the server analyzes it itself
            return
        setup.execute("CREATE TABLE bench_grown (id int PRIMARY KEY)")
        setup.execute("ANALYZE bench_grown")  # planned as empty from now on
        setup.execute("INSERT INTO bench_grown SELECT generate_series(1, 500)")
    monkeypatch.setattr(Autoanalyze, "INTERVAL", 0.05)
    analyzer = Autoanalyze.start(url)
    assert analyzer is not None
    try:
        deadline = time.monotonic() + 10
        while not analyzer.analyzed["bench_grown"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a few more looks: analyzed, it is no longer due
    finally:
        analyzer.stop()
        with psycopg.connect(url, autocommit=True) as setup:
            (tuples,) = setup.execute(
                "SELECT reltuples FROM pg_class WHERE relname = 'bench_grown'"
            ).fetchone()
            setup.execute("DROP TABLE bench_grown")

    assert analyzer.analyzed["bench_grown"] == 1
    assert tuples == 500


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_table_is_analyzed_again_once_it_has_doubled_not_at_each_tenth(monkeypatch):
    url = database_url()
    # One connection a step: a session's counts of rows written reach the statistics at the
    # latest when it ends, and those of the first 1,000 must not land after the ANALYZE.
    for step in (
        "CREATE TABLE bench_doubled (id int PRIMARY KEY)",
        "INSERT INTO bench_doubled SELECT generate_series(1, 1000)",
        "ANALYZE bench_doubled",
        # A fifth more: past autovacuum's 10 %, far from doubling.
        "INSERT INTO bench_doubled SELECT generate_series(1001, 1200)",
    ):
        with psycopg.connect(url, autocommit=True) as setup:
            if setup.execute("SHOW autovacuum").fetchone()[0] == "on":
                return  # the server analyzes it itself (the test above)
            setup.execute(step)
    monkeypatch.setattr(Autoanalyze, "INTERVAL", 0.05)
    analyzer = Autoanalyze.start(url)
    assert analyzer is not None
    try:
        time.sleep(0.5)  # several looks
        grown_a_fifth = analyzer.analyzed["bench_doubled"]
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute("INSERT INTO bench_doubled SELECT generate_series(1201, 2200)")
        deadline = time.monotonic() + 10
        while not analyzer.analyzed["bench_doubled"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        analyzer.stop()
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute("DROP TABLE bench_doubled")

    assert grown_a_fifth == 0
    assert analyzer.analyzed["bench_doubled"] == 1
