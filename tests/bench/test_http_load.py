"""bench/http_load.py's reading of a rate ramp: which rates it offers, when a rate is held, and
which is the highest held; the commands of the servers it measures; what its sampler of the
database's sessions counts."""

import os
import threading
import time
from collections import Counter

import psycopg
import pytest

from bench.harness import process_group_cpu, server_command
from bench.http_load import Step, Waits, WaitSampler, highest_held, ramp
from tests.connections import database_url
from tests.markers import postgresql_only


def step(rate, *, p99=0.010, p999=0.050, errors=0, authorizations=None):
    answered = rate * 0.7 if authorizations is None else authorizations
    return Step(
        rate=rate, requests=rate, authorizations=answered, p99=p99, p999=p999, errors=errors
    )


def test_the_ramp_climbs_by_its_step_up_to_the_top():
    assert ramp(100, 50, 300) == [100, 150, 200, 250, 300]
    assert ramp(100, 30, 200) == [100, 130, 160, 190]
    assert ramp(0.5, 0.1, 0.8) == [0.5, 0.6, 0.7, 0.8]
    assert ramp(300, 20, 100) == [300]  # the rate asked is offered, whatever the top


@pytest.mark.parametrize(
    ("fields", "held"),
    [
        ({}, True),
        ({"p99": 0.050, "p999": 0.200}, True),  # the targets are bounds: reaching them holds
        ({"p99": 0.0501}, False),
        ({"p999": 0.2001}, False),
        ({"errors": 1}, False),
        ({"authorizations": 0}, False),  # nothing answered is not a rate held
    ],
)
def test_a_rate_is_held_with_no_error_and_the_latency_targets(fields, held):
    assert step(100, **fields).held is held


def test_the_highest_rate_held_is_below_the_first_one_not_held():
    steps = [step(100), step(120), step(140, p99=0.080), step(160)]
    assert highest_held(steps).rate == 120
    assert highest_held(list(reversed(steps))).rate == 120  # by rate, not by order of the run
    assert highest_held([step(100, errors=2), step(120)]) is None
    assert highest_held([]) is None


def test_the_servers_commands():
    sync = server_command("gunicorn", port=18100, workers=3, threads=1)
    gthread = server_command("gunicorn", port=18100, workers=2, threads=4)
    granian = server_command("granian", port=18100, workers=2, threads=1)

    assert sync[1:6] == ["config.wsgi", "-w", "3", "-b", "127.0.0.1:18100"]
    assert "--worker-class" not in sync
    assert gthread[gthread.index("--worker-class") + 1] == "gthread"
    assert gthread[gthread.index("--threads") + 1] == "4"
    assert granian[-1] == "config.wsgi:application"
    assert granian[granian.index("--interface") + 1] == "wsgi"
    assert granian[granian.index("--workers") + 1] == "2"
    assert granian[granian.index("--port") + 1] == "18100"
    with pytest.raises(ValueError, match="unknown server"):
        server_command("uwsgi", port=18100, workers=1, threads=1)


def test_a_process_groups_processor_time_counts_its_work():
    group = os.getpgid(0)
    before = process_group_cpu(group)
    spent = time.process_time()
    while time.process_time() - spent < 0.3:
        pass

    assert process_group_cpu(group) - before >= 0.2  # clock ticks: 10 ms apart
    assert process_group_cpu(2**22 + 7) == 0  # no such group


def test_the_waits_report_sessions_per_sample_and_counters_per_request():
    lock = ("active", "Lock:transactionid")
    idle = ("idle in transaction", "Client:ClientRead")
    first = Waits(samples=4, seen=Counter({lock: 2, idle: 3}), multixacts=3, rollbacks=1,
                  deadlocks=0)  # fmt: skip
    second = Waits(samples=4, seen=Counter({idle: 3}), multixacts=0, rollbacks=0, deadlocks=1)

    both = first + second
    head, *body, locked = both.lines(requests=6)

    assert (both.samples, both.multixacts, both.rollbacks, both.deadlocks) == (8, 3, 1, 1)
    assert "3 MultiXacts created (0.50 per request), 1 rollbacks, 1 deadlocks" in head
    assert body[0].split() == ["0.75", "idle", "in", "transaction", "Client:ClientRead"]
    assert body[1].split() == ["0.25", "active", "Lock:transactionid"]
    assert locked.endswith("waiting for a lock: 0.25 per sample")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_sampler_counts_a_multixact_and_a_session_waiting_for_a_row():
    url = database_url()
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE TABLE bench_probe (id int PRIMARY KEY)")
        setup.execute("INSERT INTO bench_probe VALUES (1)")
    sampler = WaitSampler(url, period=0.005)
    sampler.start()
    try:
        with (
            psycopg.connect(url) as one,
            psycopg.connect(url) as two,
            psycopg.connect(url) as three,
        ):
            # Two key-sharers of one row at once, as two payments' foreign keys on one
            # merchant's row: a MultiXact. A third session waits to update it.
            for sharer in (one, two):
                sharer.execute("SELECT 1 FROM bench_probe WHERE id = 1 FOR KEY SHARE")
            updater = threading.Thread(
                target=three.execute, args=("SELECT 1 FROM bench_probe WHERE id = 1 FOR UPDATE",)
            )
            updater.start()
            time.sleep(0.3)
            one.rollback()
            two.rollback()
            updater.join(5)
            three.rollback()
    finally:
        sampler.stop.set()
        sampler.join(5)
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute("DROP TABLE bench_probe")

    waits = sampler.waits
    assert waits is not None
    assert waits.multixacts >= 1
    assert any(event.startswith("Lock:") for _state, event in waits.seen)
