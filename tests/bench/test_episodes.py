"""bench/episodes.py: the late requests grouped into episodes, the machine read between two
samples, the report; and the sampler against the real server."""

import os
import time
from collections import Counter

import psycopg
import pytest

from bench import episodes
from bench.episodes import Episode, Sample, Sampler, report, window
from tests.connections import database_url
from tests.markers import postgresql_only

TICK = episodes.TICK


def test_late_requests_whose_lateness_overlaps_make_one_episode():
    found = episodes.episodes(
        [
            (10.0, 0.200),  # late until 10.2
            (10.1, 0.080),
            (10.0, 0.020),  # on time: not counted
            (10.3, 0.060),  # starts within 0.25 s of 10.2: the same episode
            (20.0, 0.051),  # alone, ten seconds later
        ],
        threshold=0.050,
    )

    assert found == [
        Episode(start=10.0, end=pytest.approx(10.36), slow=3, worst=0.200),
        Episode(start=20.0, end=pytest.approx(20.051), slow=1, worst=0.051),
    ]


def test_no_late_request_no_episode():
    assert episodes.episodes([(1.0, 0.01), (2.0, 0.049)], threshold=0.050) == []


def sample(
    at,
    *,
    busy=0,
    idle=0,
    iowait=0,
    stalled=0,
    written=0,
    disk_busy=0,
    dirty=0,
    wal=0,
    processes=None,
    sessions=(),
):
    # Counters so far: user, nice, system, idle, iowait, irq, softirq, steal.
    return Sample(
        at=at,
        cpu=(busy, 0, 0, idle, iowait, 0, 0, 0),
        io_stalled=stalled,
        disk=(written, disk_busy),
        dirty=dirty,
        counters=(wal, 0, 100, 0, 0, 0, 0),
        processes=processes or {},
        sessions=tuple(sessions),
    )


FLUSHING = ("client", "active", "IO:WALSync", "COMMIT")


def test_the_machine_between_the_samples_around_a_moment():
    samples = [
        sample(0.0, processes={7: 0, 8: 0}),
        sample(1.0, busy=TICK, idle=TICK, processes={7: TICK // 2, 8: 0}),
        # A second in which the disk stalled everything and process 8 took a core.
        sample(
            2.0,
            busy=2 * TICK,
            idle=TICK,
            iowait=TICK,
            stalled=500_000,
            written=2_000,
            disk_busy=900,
            dirty=40_000_000,
            wal=1_000_000,
            processes={7: TICK // 2, 8: TICK},
            sessions=[FLUSHING, FLUSHING],
        ),
        sample(
            3.0,
            busy=3 * TICK,
            idle=2 * TICK,
            iowait=TICK,
            stalled=500_000,
            written=2_000,
            disk_busy=900,
            wal=1_000_000,
            processes={7: TICK, 8: TICK},
        ),
    ]

    seen = window(samples, 1.2, 1.8)

    assert seen.seconds == pytest.approx(1.0)
    assert (seen.busy, seen.iowait, seen.io_stalled) == pytest.approx((1.0, 1.0, 0.5))
    assert seen.disk_written == 2_000 * 512
    assert seen.disk_busy == pytest.approx(0.9)
    assert seen.processes == {7: 0.0, 8: 1.0}
    assert seen.sessions == Counter({FLUSHING: 2})
    assert seen.storage().startswith(
        "disk 1.0 MB/s written, busy 90%, 40.0 MB waiting in the kernel's cache at most; WAL "
        "1.00 MB/s, 0 records/s of which 0 full pages"
    )
    assert window(samples, 3.5, 4.0) is None  # after the last sample


def test_a_process_first_seen_inside_the_window_counts_from_zero():
    samples = [sample(0.0), sample(1.0, busy=TICK, processes={9: TICK // 4})]

    assert window(samples, 0.0, 1.0).processes == {9: 0.25}


def test_the_report_puts_the_worst_episode_first_with_what_ran_then():
    samples = [
        sample(0.0, processes={7: 0, 8: 0}),
        sample(1.0, busy=TICK, idle=TICK, processes={7: TICK // 10, 8: 0}),
        sample(
            2.0, busy=2 * TICK, idle=TICK, processes={7: TICK // 5, 8: TICK}, sessions=[FLUSHING]
        ),
    ]
    found = [Episode(0.2, 0.4, 2, 0.080), Episode(1.2, 1.6, 30, 0.400)]

    lines = report(found, samples, {7: "granian", 8: "checkpointer"}, origin=0.0, threshold=0.05)

    assert lines[0].startswith("episodes of requests later than 50.0 ms (2, the warm-up's")
    worst = lines.index("    1.20 s to 1.60 s: 30 late, the worst 400.0 ms")
    assert worst < lines.index("    0.20 s to 0.40 s: 2 late, the worst 80.0 ms")
    assert lines[worst + 3] == "     1.00 cores (run 0.50)  checkpointer [8]"
    assert lines[worst + 5] == "     1.00 per sample  client, active, IO:WALSync: COMMIT"
    assert not any("waiting for a lock" in line for line in lines)


def test_the_sessions_waiting_for_a_lock_are_summed_over_their_statements():
    samples = [
        sample(0.0),
        sample(
            1.0,
            busy=TICK,
            sessions=[
                ("client", "active", "Lock:transactionid", "UPDATE a SET x = 1"),
                ("client", "active", "Lock:tuple", "UPDATE a SET x = 2"),
                ("client", "active", "Lock:tuple", "SELECT 1 FROM b FOR UPDATE"),
                FLUSHING,
            ],
        ),
    ]

    lines = report([Episode(0.2, 0.4, 3, 0.3)], samples, {}, origin=0.0, threshold=0.05)

    assert lines[-1] == "     3.00 per sample  waiting for a lock in all"


def test_statements_are_shown_by_their_shape():
    assert (
        episodes._shape("SELECT * FROM t\n  WHERE id = 42 AND name = 'x'")
        == "SELECT * FROM t WHERE id = ? AND name = ?"
    )


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_sampler_sees_the_machine_and_a_session_at_work():
    url = database_url()
    sampler = Sampler(url, period=0.05)
    sampler.start()
    try:
        with psycopg.connect(url, autocommit=True) as busy:
            busy.execute("SELECT pg_sleep(0.4)")
        time.sleep(0.1)
    finally:
        sampler.stop()

    assert len(sampler.samples) >= 5
    last = sampler.samples[-1]
    assert os.getpid() in last.processes
    assert len(last.counters) == len(episodes.COUNTER_FIELDS)
    seen = Counter(session[2:] for s in sampler.samples for session in s.sessions)
    assert seen[("Timeout:PgSleep", "SELECT pg_sleep(0.4)")] >= 3
    assert any(name.startswith("postgres: ") for name in sampler.names.values())
