"""The one harness every benchmark runs on.

A run gets a PostgreSQL database of its own (named by DATABASE_URL, dropped and created again),
Django set up on it in the benchmark's process, gunicorn and a Celery worker started as
subprocesses with the environment they need and stopped whatever happens (`with Bench(...)`),
`manage.py ledger verify` at the end, and, measured in the same run, the machine's limit for one
authorization: pgbench running its bare SQL (`bench/limit/`), printed beside the figures with the
ratio.
"""

import argparse
import contextlib
import dataclasses
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SQL = Path(__file__).resolve().parent / "limit"
HOST = "127.0.0.1"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
# PostgreSQL's own databases and the tests' (pytest-django's `test_*`, the shared `test`): a
# benchmark drops its database, so it must never be one of these.
RESERVED_DATABASES = {"postgres", "template0", "template1", "test"}


def checked_database_url(url: str) -> str:
    """`url`, once it names a PostgreSQL database on this machine that a benchmark may drop."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database this script may recreate")
    if (parts.hostname or "") not in LOCAL_HOSTS:
        raise SystemExit(f"refusing a database that is not on this machine: {parts.hostname!r}")
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    if name in RESERVED_DATABASES or name.startswith("test_"):
        raise SystemExit(f"refusing a database a benchmark must not drop: {name!r}")
    return url


def _admin_url(url: str) -> tuple[str, str]:
    """The URL of the server's `postgres` database, and the name of the database `url` names."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def recreate_database(url: str) -> None:
    import psycopg

    admin_url, name = _admin_url(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    admin_url, name = _admin_url(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def free_port() -> int:
    """BENCH_PORT if set (a port agreed on a shared machine), else one the system gives."""
    if os.environ.get("BENCH_PORT"):
        return int(os.environ["BENCH_PORT"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Redis:
    """The Django cache and the Celery broker of a run, in Redis databases of their own."""

    cache_url: str = "redis://127.0.0.1:6379/12"
    broker_url: str = "redis://127.0.0.1:6379/13"

    def environment(self) -> dict[str, str]:
        return {"CACHE_URL": self.cache_url, "CELERY_BROKER_URL": self.broker_url}

    def flush(self) -> None:
        """Empty both: a cache or a queue left by an earlier run would name rows of a database
        since dropped."""
        import redis

        for url in (self.cache_url, self.broker_url):
            if url.startswith("redis://"):
                client = redis.Redis.from_url(url)
                client.flushdb()
                client.close()

    def queue_length(self, queue: str = "celery") -> int | None:
        """Tasks waiting in the broker (kombu keeps a Redis list per queue)."""
        import redis

        if not self.broker_url.startswith("redis://"):
            return None
        client = redis.Redis.from_url(self.broker_url)
        try:
            return client.llen(queue)
        finally:
            client.close()


def add_redis_arguments(parser: argparse.ArgumentParser) -> None:
    default = Redis()
    parser.add_argument(
        "--cache-url",
        default=default.cache_url,
        help=f"the Django cache, emptied first (default: {default.cache_url})",
    )
    parser.add_argument(
        "--broker-url",
        default=default.broker_url,
        help=f"the Celery broker, emptied first (default: {default.broker_url})",
    )


def add_limit_arguments(parser: argparse.ArgumentParser, *, seconds: float = 10.0) -> None:
    parser.add_argument(
        "--limit-seconds",
        type=float,
        default=seconds,
        help="seconds of pgbench running the bare SQL of one authorization, the machine's limit "
        f"printed beside the figures; 0 to leave it out (default: {seconds:g})",
    )


SERVERS = ("gunicorn", "granian")


def server_command(server: str, *, port: int, workers: int, threads: int) -> list[str]:
    """The command that serves config.wsgi with `server` (one of SERVERS)."""
    program = str(Path(sys.executable).with_name(server))
    if server == "granian":
        return [
            program, "--interface", "wsgi", "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads),
            "--http", "1", "--no-ws", "--log-level", "warning", "config.wsgi:application",
        ]  # fmt: skip
    if server != "gunicorn":
        raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
    command = [
        program, "config.wsgi", "-w", str(workers), "-b", f"{HOST}:{port}",
        "--timeout", "60", "--graceful-timeout", "10",
    ]  # fmt: skip
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    import gunicorn.config

    if hasattr(gunicorn.config, "ControlSocketDisable"):
        command.append("--no-control-socket")  # gunicorn >= 25.1 makes ~/.gunicorn/*.ctl
    return command


@dataclass(frozen=True)
class Limit:
    """What pgbench reached running the bare SQL of one authorization (lock the wallet, read
    its pockets, one guarded update, insert a decision and a hold), nothing else."""

    clients: int
    seconds: float
    rate: float  # transactions per second
    latency: float  # seconds, pgbench's average

    @classmethod
    def from_pgbench(cls, output: str, *, clients: int, seconds: float) -> "Limit":
        """From pgbench's report: `tps = ...` and `latency average = ... ms`."""
        rate = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
        latency = re.search(r"^latency average = ([\d.]+) ms", output, re.MULTILINE)
        if rate is None or latency is None:
            raise RuntimeError(f"pgbench printed no tps or latency:\n{output}")
        return cls(
            clients=clients,
            seconds=seconds,
            rate=float(rate.group(1)),
            latency=float(latency.group(1)) / 1000,
        )

    def __str__(self) -> str:
        clients = "1 client" if self.clients == 1 else f"{self.clients} clients"
        return (
            f"limit (pgbench, bare SQL of one authorization, {clients}, {self.seconds:g} s): "
            f"{self.rate:,.0f}/s, latency average {ms(self.latency)}"
        )


def print_against_limit(label: str, *, rate: float, p50: float, limit: Limit | None) -> None:
    """A figure of the run with the limit beside it and the ratio of the two."""
    if limit is None:
        return
    print(limit)
    print(
        f"{label} against the limit: {rate:,.0f}/s for {limit.rate:,.0f}/s "
        f"({rate / limit.rate:.3f}x); p50 {ms(p50)} for {ms(limit.latency)} "
        f"({p50 / limit.latency:.0f}x)"
    )


class Autoanalyze:
    """What autovacuum's analyze does for a platform at scale, on a server that runs without
    autovacuum (this machine's PostgreSQL: `autovacuum = off`): every few seconds, each table of
    the run's database changed by more rows than the server's autovacuum_analyze_threshold plus
    GROWTH times its size is analyzed.

    Without it, a run measured plans PostgreSQL made from statistics no production server keeps:
    a table analyzed empty (spending, the stored answers) is planned as empty, the hot path's
    statements are planned once per connection (generic plans), and every read of it scanned the
    whole table as it grew (1.2 ms instead of 0.13 ms for the read under the wallet's lock, at
    100-140 payments a second from a fresh database: BENCHMARKS.md, issue 19 part 12). It looks
    every INTERVAL seconds, not each autovacuum_naptime (a minute): a run's steps last 10-20 s,
    and a production server spends only its first minute on an empty table.

    GROWTH is 1, a table analyzed again once it has doubled, not autovacuum's 10 %: the
    benchmarks' tables are small and grow by a tenth every few seconds, and each ANALYZE of the
    decisions (0.1-1 s of a core) makes every connection plan its statements again; requests
    waited up to 100 ms behind it, several times a minute (BENCHMARKS.md, issue 19 part 13). The
    platform it stands for, ten million decisions, grows by a tenth in days; statistics within
    a factor of two keep these statements' plans (index lookups by key) as they are."""

    GROWTH = 1.0
    INTERVAL = 5.0

    def __init__(self, url: str):
        self.url = url
        self.analyzed: Counter = Counter()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoanalyze", daemon=True)

    @classmethod
    def start(cls, url: str) -> "Autoanalyze | None":
        """The stand-in, running; None when the server runs autovacuum itself."""
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SHOW autovacuum").fetchone()[0] == "on":
                return None
        analyzer = cls(url)
        analyzer._thread.start()
        return analyzer

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                while not self._stopping.wait(self.INTERVAL):
                    self._analyze_due(conn)
        except psycopg.Error as exc:  # the run's database gone: the run is over or failed
            print(f"autoanalyze stopped: {str(exc).strip()[:200]}")

    def _analyze_due(self, conn) -> None:
        from psycopg import sql

        due = conn.execute(
            "SELECT s.schemaname, s.relname FROM pg_stat_user_tables s"
            " JOIN pg_class c ON c.oid = s.relid"
            " WHERE s.n_mod_since_analyze > current_setting("
            "'autovacuum_analyze_threshold')::int + %s * greatest(c.reltuples, 0)",
            [self.GROWTH],
        ).fetchall()
        for schema, table in due:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
            self.analyzed[table] += 1

    def stop(self) -> None:
        """Stops the thread, then says what it analyzed."""
        self._stopping.set()
        self._thread.join(timeout=60)
        if self.analyzed:
            tables = ", ".join(f"{table} {n}x" for table, n in self.analyzed.most_common())
            print(f"autovacuum is off on this server: analyzed as it would have: {tables}")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class Bench:
    """One run: its database, the processes started for it and their log. Used as a context
    manager, it stops every process it started on the way out, whatever happened."""

    def __init__(
        self,
        name: str,
        *,
        redis: Redis | None = None,
        limit_seconds: float = 0.0,
        log_path: str | None = None,
        settings: dict[str, str] | None = None,
    ):
        self.url = checked_database_url(os.environ.get("DATABASE_URL", ""))
        self.redis = redis
        self.settings = settings or {}
        self.limit_seconds = limit_seconds
        if limit_seconds > 0:
            missing = [tool for tool in ("psql", "pgbench") if shutil.which(tool) is None]
            if missing:  # said before the data is built, not after minutes of work
                raise SystemExit(
                    f"{' and '.join(missing)} not found: install postgresql-client, or measure "
                    "no limit with --limit-seconds 0"
                )
        if log_path:
            self.log: IO[str] = open(log_path, "w")  # noqa: SIM115 -- closed by __exit__
        else:
            self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed by __exit__
                "w", prefix=f"aidwallet-{name}-", suffix=".log", dir="/tmp", delete=False
            )
        self.log_path = self.log.name
        self.processes: list[subprocess.Popen] = []
        self.analyzer: Autoanalyze | None = None

    def __enter__(self) -> "Bench":
        # The server and the worker run in sessions of their own, so a SIGTERM to this process
        # would not reach them: it is turned into an exit, which stops them on the way out.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            for process in list(self.processes):
                self.stop(process)
            if self.analyzer is not None:
                self.analyzer.stop()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self.log.close()

    def environment(self) -> dict[str, str]:
        """What this process, the server, the worker and `ledger verify` run with."""
        environment = {
            "DATABASE_URL": self.url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",  # no query log, as in production
            # Plain HTTP on 127.0.0.1: production's redirect to HTTPS would answer every call 301.
            "SECURE_SSL_REDIRECT": "false",
        }
        if self.redis is not None:
            environment |= self.redis.environment()
        return environment | self.settings

    def setup(self, *, recreate: bool = True, eager_tasks: bool = False) -> float:
        """Django in this process on the run's database (created again unless `recreate` is
        false), migrated; returns the seconds `migrate` took. With `eager_tasks`, Celery tasks
        run inline, so a figure is the work itself, not queueing, and messages go to the outbox
        and to memory."""
        if self.redis is not None:
            self.redis.flush()
        if recreate:
            recreate_database(self.url)
        os.environ.update(self.environment())
        if eager_tasks:
            os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
            os.environ.setdefault("SMS_BACKEND", "notifications.channels.OutboxSMSBackend")
            os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
            os.environ.setdefault("LOG_LEVEL", "WARNING")

        import django

        django.setup()
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        took = time.perf_counter() - started
        self.analyzer = Autoanalyze.start(self.url)
        return took

    # The processes.

    def _spawn(self, command: list[str], environment: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ | environment,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers are stopped with it
        )
        self.processes.append(process)
        return process

    def start_server(
        self,
        *,
        port: int,
        workers: int,
        threads: int = 1,
        server: str = "gunicorn",
        environment: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        """`config.wsgi` served on 127.0.0.1:`port` by `workers` processes; `environment` is
        added last (a rate limit to try, say). `server` is "gunicorn" (sync workers, or gthread
        workers of `threads` threads each when `threads` > 1; a sync worker closes the
        connection after each answer) or "granian" (a Rust HTTP server calling the WSGI
        application from `threads` threads per process, keeping connections alive)."""
        command = server_command(server, port=port, workers=workers, threads=threads)
        print("server: " + " ".join(command[1:]))
        return self._spawn(
            command,
            self.environment()
            | {
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "CONN_MAX_AGE": "60",
                # The load is the point: the merchant API's rate limit would refuse it.
                "MERCHANT_API_RATE": "100000/second",
            }
            | (environment or {}),
        )

    def start_celery(self, *, concurrency: int, beat: bool = False) -> subprocess.Popen:
        """A Celery worker; with `beat`, the scheduler in it too, as production runs one: the
        payments' messages are written by a drain beat starts every second, so a load test
        without it would leave that work out of the machine's load. At a lower priority than
        the server (nice 10), as the README runs it beside the API's workers: at normal
        priority, each second's drain (a batch of a second's payments) took a core from them
        and the payments of that second's first quarter waited (p99 108 ms there against
        31-62 ms in the other quarters, 160/s; BENCHMARKS.md, issue 19 part 12)."""
        celery = Path(sys.executable).with_name("celery")
        command = [
            "nice", "-n", "10",
            str(celery), "-A", "config", "worker", "-l", "WARNING", "-c", str(concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if beat:
            command.append("--beat")
        print("celery: " + " ".join(command[1:]))
        return self._spawn(command, self.environment())

    def wait_ready(
        self,
        server: subprocess.Popen,
        port: int,
        *,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        status: int = 200,
        timeout: float = 60,
    ) -> None:
        """Until the server answers `status` to the request; any other answer is an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {server.returncode} while starting"
                )
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                response.read()
                if response.status == status:
                    return
                raise RuntimeError(f"the server answers {response.status} to {method} {path}")
            except OSError:
                time.sleep(0.2)
            finally:
                conn.close()
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process group (gunicorn's master and workers, Celery's pool), SIGKILL
        if it lingers. A master that died on its own may have left workers behind: they get the
        signal too."""
        if process not in self.processes:
            return  # stopped already: its process group id may belong to another by now
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            process.poll()
        else:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"process {process.pid}: no exit 15 s after SIGTERM, killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.remove(process)

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL to the process group, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self.processes.remove(process)

    # The checks.

    def database_connections(self) -> str:
        """How full the PostgreSQL server is: it may be shared, and a full one answers "too
        many clients" to a worker that opens a connection."""
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                used, ours, limit = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE datname = current_database()),"
                    " current_setting('max_connections') FROM pg_stat_activity"
                ).fetchone()
        except psycopg.Error as exc:
            return f"cannot tell ({str(exc).strip()[:200]})"
        return f"{used} of {limit} connections in use, {ours} on this database"

    def verify_ledger(self) -> bool:
        print()
        print("manage.py ledger verify:")
        try:
            result = subprocess.run(
                [sys.executable, "manage.py", "ledger", "verify"],
                cwd=ROOT,
                env=os.environ | self.environment(),
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired:
            print("  did not finish within 900 s")
            return False
        for line in (result.stdout + result.stderr).strip().splitlines():
            print(f"  {line}")
        print(f"  exit status {result.returncode}")
        return result.returncode == 0

    def measure_limit(self, *, clients: int) -> Limit | None:
        """pgbench running the bare SQL of one authorization with `clients` connections, in a
        database of its own beside the run's (dropped afterwards), for --limit-seconds; None if
        the run measures no limit. Run it once the server is stopped: it wants the CPU alone."""
        if self.limit_seconds <= 0:
            return None
        parts = urlsplit(self.url)
        url = urlunsplit(parts._replace(path=f"{parts.path}_limit"))
        recreate_database(url)
        try:
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-f", str(LIMIT_SQL / "schema.sql")],
                check=True,
                capture_output=True,
            )
            command = [
                "pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
                "-T", f"{self.limit_seconds:g}", "-f", str(LIMIT_SQL / "auth.sql"), url,
            ]  # fmt: skip
            result = subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            drop_database(url)
        return Limit.from_pgbench(result.stdout, clients=clients, seconds=self.limit_seconds)


# The report.


def _proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the process' name (which may hold spaces): state,
    ppid, pgrp, ..., utime (index 11), stime, cutime, cstime."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def backend_cpu_seconds() -> float:
    """CPU time (user + system) used so far by the PostgreSQL server process of this process'
    default connection, read from /proc (the server runs on this machine). On a machine shared
    with other work, CPU per operation drifts far less than wall-clock time: it is the figure
    to compare two runs by."""
    from django.db import connection

    connection.ensure_connection()
    fields = _proc_stat(connection.connection.info.backend_pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends_cpu(url: str) -> float:
    """Processor seconds (user and system) so far of the PostgreSQL server processes connected
    to the database of `url` (this machine's server), this reading's own excepted: the
    database's share of a load whose clients keep their connections (a server's workers with
    CONN_MAX_AGE). A connection closed meanwhile takes its processes' time with it."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    total = 0
    for pid in pids:
        try:
            fields = _proc_stat(pid)
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_group_cpu(pgid: int) -> float:
    """Processor seconds (user and system) of the processes of group `pgid` so far, a server's
    master and workers: the children it has reaped counted in its own. What serving costs,
    whatever share of the cores the machine's other work leaves the server."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _proc_stat(entry.name)
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadTimes:
    """One thread's counters read from /proc: processor seconds in user and kernel mode, the
    context switches it asked for (a wait: a socket, a lock) and those forced on it (preempted
    by another runnable thread on a busy core)."""

    process: int
    name: str
    main: bool  # the process' first thread
    user: float
    system: float
    voluntary: int
    involuntary: int

    def __sub__(self, other: "ThreadTimes") -> "ThreadTimes":
        return self._combined(other, -1)

    def __add__(self, other: "ThreadTimes") -> "ThreadTimes":
        return self._combined(other, 1)

    def _combined(self, other: "ThreadTimes", sign: int) -> "ThreadTimes":
        return dataclasses.replace(
            self,
            user=self.user + sign * other.user,
            system=self.system + sign * other.system,
            voluntary=self.voluntary + sign * other.voluntary,
            involuntary=self.involuntary + sign * other.involuntary,
        )


def process_group_threads(pgid: int) -> dict[int, ThreadTimes]:
    """Every thread of the processes of group `pgid` (a server's master and workers), by thread
    id: where a server's processor time goes, thread by thread (granian: Python's thread that
    calls the application, its Rust runtime's threads, the master)."""
    tick = os.sysconf("SC_CLK_TCK")
    threads = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if int(_proc_stat(entry.name)[2]) != pgid:
                continue
            tasks = os.listdir(f"/proc/{entry.name}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            try:
                fields = _proc_stat(f"{entry.name}/task/{tid}")
                with open(f"/proc/{entry.name}/task/{tid}/comm") as comm:
                    name = comm.read().strip()
                with open(f"/proc/{entry.name}/task/{tid}/status") as status:
                    counts = dict(line.split(":", 1) for line in status if "ctxt_switches" in line)
            except OSError:
                continue
            threads[int(tid)] = ThreadTimes(
                process=int(entry.name),
                name=name,
                main=tid == entry.name,
                user=int(fields[11]) / tick,
                system=int(fields[12]) / tick,
                voluntary=int(counts["voluntary_ctxt_switches"]),
                involuntary=int(counts["nonvoluntary_ctxt_switches"]),
            )
    return threads


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and the maximum."""
    if len(values) < 2:
        value = values[0] if values else 0.0
        return value, value, value
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98], max(values)


def p999(values: list[float]) -> float:
    """The 99.9th percentile (the maximum below 1,000 values: there is no finer cut)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=1000, method="inclusive")[998]


def due_times(
    *, index: int, clients: int, rate: float, start: float, deadline: float, stop: threading.Event
) -> Iterator[float]:
    """An open loop's schedule, for client `index` of `clients` sharing `rate` requests/s in
    all: request k of the whole run is due at start + k / rate (time.perf_counter), this client
    takes every clients-th one and is handed each when it is due. A client still busy when its
    next one is due gets it late, and the caller measures the latency from the due time: that
    lateness is queueing. Ends at `deadline`, or as soon as `stop` is set."""
    interval = 1.0 / rate
    k = index
    while not stop.is_set():
        due = start + k * interval
        k += clients
        if due >= deadline:
            return
        wait = due - time.perf_counter()
        if wait > 0 and stop.wait(wait):
            return
        yield due


def log_tail(path: str, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text[-lines:])


def log_exceptions(path: str) -> Counter:
    """The last line of every traceback in the server's log (of a chain, the last one's): what
    the 5xx were."""
    found: Counter = Counter()
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return found
    in_traceback = False
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            in_traceback = False
            following = [later for later in lines[i + 1 : i + 4] if later.strip()]
            if following and following[0].startswith(("The above exception", "During handling")):
                continue  # a cause: the exception that follows is the one the request died of
            found[line[:200]] += 1
    return found
