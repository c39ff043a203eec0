"""What ran beside the slow requests: a sampler of the whole machine while a run is measured,
and the report of each episode of slow requests (`bench.http_load --episodes`).

A run's tail comes in episodes: tens of requests late together, then none for seconds
(BENCHMARKS.md, issue 19 parts 13 and 14). Their cause is outside the request: a process that
took the cores (the stand-in's ANALYZE, the Celery worker's drain, a neighbour's job), the disk
(a WAL flush that stalls, and every COMMIT with it), the hypervisor (steal).
Every PERIOD seconds the sampler reads the machine's processor counters (/proc/stat), the time
every task was stalled on IO (/proc/pressure/io), each process' processor time
(/proc/<pid>/stat), the disks' writes and busy time (/proc/diskstats), PostgreSQL's WAL and
checkpoint counters (pg_stat_wal, pg_stat_bgwriter) and its sessions that are not idle, in every
database and its background processes. The report groups the requests later than a threshold
into episodes and prints, for each, what the machine did meanwhile beside its average over the
whole run.

A sample costs about 2 ms of this process' processor (a hundred processes read), 2 % of a core
at ten a second.
"""

import bisect
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from bench.harness import ms

PERIOD = 0.1
TICK = os.sysconf("SC_CLK_TCK")
# /proc/stat's first line, in this order.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# PostgreSQL's sessions doing something: a client's between two statements of a transaction
# counts ("idle in transaction": it holds its locks), a background process' idle loop does not.
SESSIONS = """
    SELECT CASE WHEN backend_type <> 'client backend' THEN backend_type
                WHEN datname = current_database() THEN 'client'
                ELSE 'client of ' || datname END,
           COALESCE(state, ''),
           COALESCE(wait_event_type || ':' || wait_event, 'running'),
           left(query, 200)
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
      AND state IS DISTINCT FROM 'idle'
      AND wait_event_type IS DISTINCT FROM 'Activity'
"""
# The server's counters, cumulative: the WAL's bytes, full-page images and flushes; the buffers
# the checkpointer wrote and those backends had to write themselves to find a free one. A
# backend adds its counts at most once a second, the checkpointer when a checkpoint ends: over
# a tenth of a second they come in lumps, over a run they are exact.
COUNTERS = """
    SELECT w.wal_bytes::bigint, w.wal_fpi, w.wal_records, w.wal_sync,
           b.buffers_checkpoint, b.buffers_backend, b.checkpoints_timed + b.checkpoints_req
    FROM pg_stat_wal w, pg_stat_bgwriter b
"""
COUNTER_FIELDS = ("wal", "fpi", "records", "flushes", "checkpoint", "backend", "checkpoints")
BLOCK = 8192  # PostgreSQL's page
SECTOR = 512  # /proc/diskstats counts in these whatever the disk


@dataclass(frozen=True)
class Sample:
    """The machine at one moment: counters so far, and the sessions seen then."""

    at: float  # time.perf_counter()
    cpu: tuple[int, ...]  # CPU_FIELDS, ticks so far, all cores
    io_stalled: int  # microseconds so far every runnable task waited on IO (0: no PSI here)
    disk: tuple[int, int]  # sectors written, milliseconds busy so far (the busiest disk's)
    dirty: int  # bytes in the kernel's cache waiting to be written or being written, now
    counters: tuple[int, ...]  # COUNTER_FIELDS so far
    processes: dict[int, int]  # pid -> processor ticks so far (user and system)
    sessions: tuple[tuple[str, str, str, str], ...]  # (who, state, wait event, query)


@dataclass(frozen=True)
class Episode:
    """Requests later than the threshold whose lateness overlapped: from the first one's
    scheduled time to the last answer."""

    start: float
    end: float
    slow: int
    worst: float


def episodes(
    requests: Iterable[tuple[float, float]], *, threshold: float, gap: float = 0.25
) -> list[Episode]:
    """The requests (scheduled time, latency) later than `threshold`, grouped: one episode while
    each starts within `gap` seconds of the answer of those before it."""
    grouped: list[Episode] = []
    for start, latency in sorted(r for r in requests if r[1] > threshold):
        end = start + latency
        if grouped and start <= grouped[-1].end + gap:
            last = grouped[-1]
            grouped[-1] = Episode(
                last.start, max(last.end, end), last.slow + 1, max(last.worst, latency)
            )
        else:
            grouped.append(Episode(start, end, 1, latency))
    return grouped


def _read_cpu() -> tuple[int, ...]:
    with open("/proc/stat") as stat:
        return tuple(int(value) for value in stat.readline().split()[1 : 1 + len(CPU_FIELDS)])


def _read_io_stalled() -> int:
    try:
        with open("/proc/pressure/io") as pressure:
            for line in pressure:
                if line.startswith("full"):
                    return int(line.rsplit("total=", 1)[1])
    except OSError:
        pass  # a kernel without pressure stall information
    return 0


def _read_disks() -> tuple[int, int]:
    """Sectors written by every disk, and the busiest one's time spent doing IO, so far; whole
    disks only (a partition's writes are its disk's too)."""
    written = busy = 0
    with open("/proc/diskstats") as stats:
        for line in stats:
            fields = line.split()
            if os.path.exists(f"/sys/block/{fields[2]}/device"):
                written += int(fields[9])
                busy = max(busy, int(fields[12]))
    return written, busy


def _read_dirty() -> int:
    """The page cache's bytes not yet on disk: Dirty and Writeback of /proc/meminfo."""
    dirty = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(("Dirty:", "Writeback:")):
                dirty += int(line.split()[1]) * 1024
    return dirty


def _process_name(pid: str, comm: str) -> str:
    """What `ps` shows: PostgreSQL's processes name their role and database in their title."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        words = []
    if not words:
        return comm
    if comm in ("postgres", "postmaster"):
        return " ".join(words)[:70]
    return " ".join([os.path.basename(words[0]), *words[1:]])[:70]


class Sampler(threading.Thread):
    """Samples the machine every PERIOD seconds until stopped; `samples` and `names` (pid ->
    what the process is, read when first seen) are read once it has stopped."""

    def __init__(self, url: str, period: float = PERIOD):
        super().__init__(name="episode-sampler", daemon=True)
        self.url, self.period = url, period
        self.stopping = threading.Event()
        self.samples: list[Sample] = []
        self.names: dict[int, str] = {os.getpid(): "this client (bench)"}

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            while True:
                sessions = tuple(conn.execute(SESSIONS).fetchall())
                counters = conn.execute(COUNTERS).fetchone()
                self.samples.append(
                    Sample(
                        at=time.perf_counter(),
                        cpu=_read_cpu(),
                        io_stalled=_read_io_stalled(),
                        disk=_read_disks(),
                        dirty=_read_dirty(),
                        counters=tuple(counters),
                        processes=self._processes(),
                        sessions=sessions,
                    )
                )
                if self.stopping.wait(self.period):
                    break

    def _processes(self) -> dict[int, int]:
        ticks = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    text = stat.read()
            except OSError:
                continue  # gone meanwhile
            name_end = text.rfind(b")")
            fields = text[name_end + 2 :].split()
            pid = int(entry.name)
            ticks[pid] = int(fields[11]) + int(fields[12])
            if pid not in self.names:
                comm = text[text.find(b"(") + 1 : name_end].decode(errors="replace")
                self.names[pid] = _process_name(entry.name, comm)
        return ticks

    def stop(self) -> None:
        self.stopping.set()
        self.join()


@dataclass(frozen=True)
class Window:
    """What the machine did between two samples: processor shares in cores."""

    seconds: float
    busy: float  # cores running anything (not idle, not waiting on IO)
    iowait: float  # cores idle with IO outstanding
    steal: float  # cores the hypervisor gave elsewhere
    io_stalled: float  # share of the time every runnable task waited on IO
    disk_written: float  # bytes a second
    disk_busy: float  # share of the time the busiest disk was doing IO
    dirty: int  # the most bytes waiting in the kernel's cache at a sample
    counters: dict[str, float]  # COUNTER_FIELDS a second
    processes: dict[int, float]  # pid -> cores
    sessions: Counter  # (who, state, wait event, query) -> samples
    samples: int

    def storage(self) -> str:
        """The disk, the WAL and the checkpoint over the window, a second."""
        c = self.counters
        return (
            f"disk {self.disk_written / 1e6:.1f} MB/s written, busy {self.disk_busy:.0%}, "
            f"{self.dirty / 1e6:.1f} MB waiting in the kernel's cache at most; WAL "
            f"{c['wal'] / 1e6:.2f} MB/s, {c['records']:.0f} records/s of which {c['fpi']:.0f} "
            f"full pages, {c['flushes']:.0f} flushes/s; buffers written by the checkpointer "
            f"{c['checkpoint'] * BLOCK / 1e6:.1f} MB/s, by backends "
            f"{c['backend'] * BLOCK / 1e6:.1f} MB/s"
        )

    @classmethod
    def between(cls, first: Sample, samples: list[Sample]) -> "Window":
        last = samples[-1]
        seconds = max(last.at - first.at, 1e-9)
        cpu = dict(
            zip(CPU_FIELDS, (b - a for a, b in zip(first.cpu, last.cpu, strict=True)), strict=True)
        )
        busy = sum(cpu.values()) - cpu["idle"] - cpu["iowait"] - cpu["steal"]
        processes = {
            pid: (ticks - first.processes.get(pid, 0)) / TICK / seconds
            for pid, ticks in last.processes.items()
        }
        sessions = Counter(
            (who, state, wait, _shape(query))
            for sample in samples
            for who, state, wait, query in sample.sessions
        )
        return cls(
            seconds=seconds,
            busy=busy / TICK / seconds,
            iowait=cpu["iowait"] / TICK / seconds,
            steal=cpu["steal"] / TICK / seconds,
            io_stalled=(last.io_stalled - first.io_stalled) / 1e6 / seconds,
            disk_written=(last.disk[0] - first.disk[0]) * SECTOR / seconds,
            dirty=max(sample.dirty for sample in samples),
            disk_busy=(last.disk[1] - first.disk[1]) / 1e3 / seconds,
            counters={
                name: (b - a) / seconds
                for name, a, b in zip(COUNTER_FIELDS, first.counters, last.counters, strict=True)
            },
            processes=processes,
            sessions=sessions,
            samples=len(samples),
        )


def _shape(query: str) -> str:
    """A statement's first words, its literals and whitespace folded: one line per kind."""
    return re.sub(r"\s+", " ", re.sub(r"'[^']*'|\b\d+\b", "?", query)).strip()[:60]


def window(samples: list[Sample], start: float, end: float) -> Window | None:
    """The machine from the last sample at or before `start` to the first at or after `end`;
    None when the samples do not cover it."""
    times = [sample.at for sample in samples]
    first = max(bisect.bisect_right(times, start) - 1, 0)
    last = min(bisect.bisect_left(times, end), len(samples) - 1)
    if last <= first:
        return None
    return Window.between(samples[first], samples[first + 1 : last + 1])


def report(
    found: list[Episode],
    samples: list[Sample],
    names: dict[int, str],
    *,
    origin: float,
    threshold: float,
    shown: int = 8,
    processes: int = 5,
    sessions: int = 5,
) -> list[str]:
    """Each episode, the worst first (at most `shown`), with what the machine did meanwhile;
    times in seconds from `origin` (the measured part's start: the warm-up's are negative)."""
    whole = window(samples, samples[0].at, samples[-1].at) if len(samples) > 1 else None
    if whole is None:
        return ["episodes: the machine was not sampled (the run was too short)"]
    lines = [
        f"episodes of requests later than {ms(threshold)} ({len(found)}, the warm-up's "
        f"included; the worst {min(shown, len(found))} below), what ran meanwhile against the "
        "whole run's average:",
        f"  whole run: cores busy {whole.busy:.2f}, IO wait {whole.iowait:.2f}, steal "
        f"{whole.steal:.2f}, every task stalled on IO {whole.io_stalled:.0%} of the time",
        f"    {whole.storage()}",
    ]
    for episode in sorted(found, key=lambda e: e.worst, reverse=True)[:shown]:
        lines.append(
            f"  {episode.start - origin:6.2f} s to {episode.end - origin:.2f} s: {episode.slow} "
            f"late, the worst {ms(episode.worst)}"
        )
        seen = window(samples, episode.start, episode.end)
        if seen is None:
            lines.append("    (outside the sampled time)")
            continue
        lines.append(
            f"    cores busy {seen.busy:.2f}, IO wait {seen.iowait:.2f}, steal {seen.steal:.2f}, "
            f"every task stalled on IO {seen.io_stalled:.0%} of the time ({seen.samples} "
            f"samples over {seen.seconds:.2f} s)"
        )
        lines.append(f"    {seen.storage()}")
        top = sorted(seen.processes.items(), key=lambda item: item[1], reverse=True)
        for pid, cores in top[:processes]:
            if cores <= 0:
                break
            usual = whole.processes.get(pid, 0.0)
            lines.append(
                f"    {cores:5.2f} cores (run {usual:4.2f})  {names.get(pid, pid)} [{pid}]"
            )
        for (who, state, wait, query), count in seen.sessions.most_common(sessions):
            lines.append(
                f"    {count / seen.samples:5.2f} per sample  {who}, {state or '-'}, {wait}: "
                f"{query}"
            )
        # Sessions queued on a lock spread over many statements' shapes, each below the top.
        locked = sum(n for (_, _, wait, _), n in seen.sessions.items() if wait.startswith("Lock:"))
        if locked:
            lines.append(f"    {locked / seen.samples:5.2f} per sample  waiting for a lock in all")
    return lines
