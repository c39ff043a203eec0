"""Benchmark: the merchant API over HTTP, against gunicorn (or granian) and PostgreSQL.

Builds realistic data in a database of its own (one funder; food aid in Isère, transport aid in
France and health aid in Isère and Rhône, each with a day cap; N wallets with 2 or 3 pockets;
11 approved merchants in four départements, each with an API key), starts
`gunicorn config.wsgi` on a free port of 127.0.0.1, and drives it from C client threads, each
with its own HTTP connection, like C shop tills: an authorization, then for a share of the
approved ones a capture (whole or part), and for a share of the captured ones a refund, chained
on the same client. It prints throughput, latency percentiles per operation, the decisions and
every error, then stops the server, runs `manage.py ledger verify` and measures the machine's
limit with as many connections as gunicorn has workers (bench/harness.py).

A payment is made with a one-time payment code, as at a real till: the client creates a fresh
code of a random wallet (payment_code_create, straight in the database, as the beneficiary's app
would a moment before) just before each authorization. That costs the client a few database
statements per payment, counted in the latency of `rate` mode.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_http \\
        .venv/bin/python -m bench.http_load [--mode full|rate] [--rate 300] [--seconds 20] \\
        [--find-max --rate-step 20] [--server gunicorn|granian] [--workers 4] [--threads 1]

Production-shaped: gunicorn with several sync workers, PostgreSQL, Redis as the cache
(--cache-url) and as the Celery broker (--broker-url), and one Celery worker taking the tasks
the payments queue (capture notices). Both Redis databases are emptied at the start: a cache
or a queue left by an earlier run would name rows of a database since dropped. Building 10,000
wallets through the services takes a few minutes; `--reuse` keeps the database of an earlier
run (its wallets have spent some of their money, which is fine for a load test) and only gives
each merchant a new API key, the old secrets being stored hashed.

Modes: `full` sends each client's next request as soon as the previous one is answered (closed
loop: the server's best throughput). `rate` schedules requests on a clock at a fixed total
arrival rate (open loop) and measures each latency from its scheduled time, so time spent
queueing behind a busy server counts.

`--find-max` (rate mode) offers --rate, then --rate-step more at each step, with the server
kept running, until a rate is not held: held is no error at all, and the authorizations' p99
within 50 ms and p99.9 within 200 ms of their scheduled time (the issue's targets). It prints
each step and the highest rate held, with its ratio to the limit measured with eight clients.
`--codes-ahead` makes each step's payment codes before the step, outside the measured time.

`--sample-waits` looks at the database's sessions every few milliseconds while measured and
prints what they wait on (a row lock, the WAL, the client between two statements), with the
MultiXacts created, the rollbacks and the deadlocks: what traffic to one merchant
(`--one-merchant`) could serialise on. Every payment's deferred foreign keys key-share its
merchant's row and payable account at COMMIT; two payments sharing one row at once make a
MultiXact.

`--episodes` samples the whole machine from each step's start, its warm-up included
(bench/episodes.py: the cores, the disk's stalls, each process, PostgreSQL's sessions in every
database) and prints each episode of requests later than the p99 target with what ran
meanwhile: where a step's tail came from. The sampler runs in this process: its processor,
about 20 ms a second, is counted in this client's.

Each client keeps one http.client connection and reopens it whenever it is closed; gunicorn's
sync workers close it after every answer, so "TCP connections opened" is about the number of
requests; granian (`--server granian`) keeps it alive: one per client.

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if any request got a 5xx or a connection error, if gunicorn died during
the run, or if the ledger does not verify. Figures on a 2-core machine shared by server,
database and clients are noisy.
"""

import argparse
import dataclasses
import http.client
import json
import math
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from bench import episodes, harness, scenario
from bench.harness import HOST, ms, p999, percentiles
from bench.scenario import API, MERCHANTS, WEIGHTS, Fixture

OPERATIONS = ("authorize", "capture", "refund")

# The clients.


@dataclass(frozen=True)
class Plan:
    mode: str
    rate: float
    clients: int
    warmup: float
    seconds: float
    requests: int | None
    capture_share: float
    partial_capture_share: float
    refund_share: float
    partial_approval_share: float
    max_amount: int
    timeout: float
    one_merchant: bool = False
    codes_ahead: bool = False
    sample_waits: bool = False
    episodes: bool = False


@dataclass
class Tally:
    """What one client saw. Merged after the run: no locking while requests run."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    lags: list[float] = field(default_factory=list)  # rate mode: send time - scheduled time
    decisions: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)  # (op, status, error code), warm-up too
    connection_errors: Counter = field(default_factory=Counter)  # (op, exception), warm-up too
    client_errors: Counter = field(default_factory=Counter)  # bugs of this script: (op, exception)
    server_errors: list[str] = field(default_factory=list)  # first few 5xx, op and body
    connections: int = 0
    last_done: float = 0.0
    # Processor seconds while measured: the server's (all its processes), this client's (every
    # till's thread), the Celery worker's and PostgreSQL's (the database's server processes).
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    worker_cpu: float = 0.0
    database_cpu: float = 0.0
    waits: "Waits | None" = None  # --sample-waits: the database's sessions while measured
    # Requests later than the p99 target, the warm-up's too: (scheduled or sent time, latency).
    late: list[tuple[float, float]] = field(default_factory=list)
    episodes: list[str] = field(default_factory=list)  # --episodes: the report's lines

    def merge(self, other: "Tally") -> None:
        for op in OPERATIONS:
            self.latencies[op] += other.latencies[op]
        self.lags += other.lags
        self.late += other.late
        self.decisions += other.decisions
        self.unexpected += other.unexpected
        self.connection_errors += other.connection_errors
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors[: max(0, 10 - len(self.server_errors))]
        self.connections += other.connections
        self.last_done = max(self.last_done, other.last_done)
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.worker_cpu += other.worker_cpu
        self.database_cpu += other.database_cpu
        if other.waits is not None:
            self.waits = other.waits if self.waits is None else self.waits + other.waits


@dataclass(frozen=True)
class Waits:
    """The database's sessions as sampled while measured: (state, wait event) -> samples, and
    the counters read at both ends."""

    samples: int
    seen: Counter
    multixacts: int
    rollbacks: int
    deadlocks: int

    def __add__(self, other: "Waits") -> "Waits":
        return Waits(
            samples=self.samples + other.samples,
            seen=self.seen + other.seen,
            multixacts=self.multixacts + other.multixacts,
            rollbacks=self.rollbacks + other.rollbacks,
            deadlocks=self.deadlocks + other.deadlocks,
        )

    def lines(self, requests: int) -> list[str]:
        """The report: sessions per sample by what they do, most first; counters per request."""
        per = max(requests, 1)
        head = (
            f"database, {self.samples} samples while measured: {self.multixacts} MultiXacts "
            f"created ({self.multixacts / per:.2f} per request), {self.rollbacks} rollbacks, "
            f"{self.deadlocks} deadlocks; sessions per sample, by what they do:"
        )
        if not self.samples:
            return [head]
        locked = sum(n for (_state, event), n in self.seen.items() if event.startswith("Lock:"))
        body = [
            f"  {n / self.samples:>6.2f}  {state:<20} {event or 'running'}"
            for (state, event), n in self.seen.most_common(10)
        ]
        return [head, *body, f"  waiting for a lock: {locked / self.samples:.2f} per sample"]


class WaitSampler(threading.Thread):
    """Samples the run's database every `period` seconds on a connection of its own: each
    session of the server and the Celery worker that is not idle, by state and wait event."""

    SESSIONS = """
        SELECT state, COALESCE(wait_event_type || ':' || wait_event, '')
        FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend'
          AND pid <> pg_backend_pid() AND state <> 'idle'
    """
    # mxid_age() counts back from the next MultiXact id to be given: from the first id, it grows
    # by one per MultiXact created.
    COUNTERS = """
        SELECT mxid_age('1'::xid), s.xact_rollback, s.deadlocks
        FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
        WHERE d.datname = current_database()
    """

    def __init__(self, url: str, period: float = 0.010):
        super().__init__(name="wait-sampler", daemon=True)
        self.url, self.period = url, period
        self.stop = threading.Event()
        self.waits: Waits | None = None

    def run(self) -> None:
        import psycopg

        seen: Counter = Counter()
        samples = 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            first = conn.execute(self.COUNTERS).fetchone()
            while not self.stop.is_set():
                seen.update(conn.execute(self.SESSIONS).fetchall())
                samples += 1
                self.stop.wait(self.period)
            last = conn.execute(self.COUNTERS).fetchone()
        multixacts, rollbacks, deadlocks = (b - a for a, b in zip(first, last, strict=True))
        self.waits = Waits(samples, seen, multixacts, rollbacks, deadlocks)


class Tickets:
    """A shared count of the measured requests, for --requests."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.taken = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        if self.limit is None:
            return True
        with self.lock:
            if self.taken >= self.limit:
                return False
            self.taken += 1
            return True


class Till:
    """One client: one persistent HTTP connection, its own random stream and its own queue of
    follow-up operations (the capture after an approval, the refund after a capture)."""

    def __init__(self, index: int, plan: Plan, port: int, fixture: Fixture, run_id: str, seed):
        self.index = index
        self.plan = plan
        self.port = port
        self.fixture = fixture
        self.rng = Random(f"{seed}-{index}")
        self.prefix = f"{run_id}-{index}-"
        self.sequence = 0
        self.follow_ups: deque = deque()
        self.codes: list[str] = []  # made ahead (--codes-ahead): taken before making one
        self.conn = http.client.HTTPConnection(HOST, port, timeout=plan.timeout)
        self.tally = Tally()

    def post(self, op: str, key: str, path: str, body: dict) -> tuple[int, dict] | None:
        """POST once; None after a connection error (the connection is then reopened)."""
        self.sequence += 1
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"{self.prefix}{self.sequence}",
        }
        if self.conn.sock is None:
            self.tally.connections += 1
        try:
            self.conn.request("POST", f"{API}{path}", body=json.dumps(body), headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.tally.connection_errors[(op, type(exc).__name__)] += 1
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        if response.status >= 500 and len(self.tally.server_errors) < 10:
            self.tally.server_errors.append(
                f"{op} -> {response.status}: {raw[:300].decode(errors='replace')}"
            )
        return response.status, data

    def next_request(self) -> tuple[str, tuple]:
        if self.follow_ups:
            return self.follow_ups.popleft()
        if self.plan.one_merchant:  # every payment credits one payable account: the hot row
            return "authorize", (0,)
        merchant = self.rng.choices(range(len(MERCHANTS)), WEIGHTS)[0]
        return "authorize", (merchant,)

    def perform(self, op: str, args: tuple, measured: bool) -> bool:
        """Send one request and queue what follows it; False on a connection error."""
        try:
            return self._perform(op, args, measured)
        except Exception as exc:  # an answer this script does not understand: report, go on
            self.follow_ups.clear()
            self.tally.client_errors[(op, f"{type(exc).__name__}: {exc}"[:120])] += 1
            return False

    def _perform(self, op: str, args: tuple, measured: bool) -> bool:
        plan, rng, key = self.plan, self.rng, self.fixture.keys[args[0]]
        if op == "authorize":
            body = {
                "amount": rng.randint(100, plan.max_amount),
                "currency": "EUR",
                "payment_code": self.codes.pop()
                if self.codes
                else scenario.payment_code(rng.choice(self.fixture.wallets)),
                "partial_approval_allowed": rng.random() < plan.partial_approval_share,
                "merchant_reference": f"ticket-{self.index}-{self.sequence}",
            }
            answer = self.post(op, key, "/authorizations", body)
        elif op == "capture":
            _merchant, reference, held = args
            body = {}
            if held > 1 and rng.random() < plan.partial_capture_share:
                body = {"amount": rng.randint(1, held - 1)}
            answer = self.post(op, key, f"/authorizations/{reference}/capture", body)
        else:
            _merchant, reference, captured = args
            amount = captured if rng.random() < 0.5 else rng.randint(1, captured)
            body = {"amount": amount, "reason": "article rendu"}
            answer = self.post(op, key, f"/authorizations/{reference}/refunds", body)
        if answer is None:
            self.follow_ups.clear()  # the till gives up on this payment
            return False
        status, data = answer
        if status != 201:  # counted in the warm-up too: every error is reported
            error = data.get("error") or {}
            self.tally.unexpected[(op, status, error.get("code", "-"))] += 1
            return True
        if op == "authorize":
            decline = data.get("decline") or {}
            if measured:
                self.tally.decisions[decline.get("code") or data.get("status", "?")] += 1
            approved = data.get("approved_amount") or 0
            if approved and rng.random() < plan.capture_share:
                self.follow_ups.append(("capture", (args[0], data["id"], approved)))
        elif op == "capture":
            captured = data.get("amount") or 0
            if captured and rng.random() < plan.refund_share:
                self.follow_ups.append(("refund", (args[0], args[1], captured)))
        return True

    def run_full(self, start: float, measure_from: float, deadline: float, tickets, stop) -> None:
        stop.wait(max(0.0, start - time.perf_counter()))
        while not stop.is_set():
            now = time.perf_counter()
            if now >= deadline:
                break
            measured = now >= measure_from
            if measured and not tickets.take():
                break
            op, args = self.next_request()
            sent = time.perf_counter()
            ok = self.perform(op, args, measured)
            done = time.perf_counter()
            if measured and ok:
                self.tally.latencies[op].append(done - sent)
                self.tally.last_done = done
            if ok and done - sent > TARGET_P99:
                self.tally.late.append((sent, done - sent))
            if not ok:
                stop.wait(0.05)  # do not spin on a server that is gone

    def run_rate(self, start: float, measure_from: float, deadline: float, tickets, stop) -> None:
        schedule = harness.due_times(
            index=self.index,
            clients=self.plan.clients,
            rate=self.plan.rate,
            start=start,
            deadline=deadline,
            stop=stop,
        )
        for due in schedule:
            measured = due >= measure_from
            if measured and not tickets.take():
                break
            op, args = self.next_request()
            sent = time.perf_counter()
            ok = self.perform(op, args, measured)
            done = time.perf_counter()
            if measured:
                self.tally.lags.append(sent - due)
                if ok:
                    self.tally.latencies[op].append(done - due)
                    self.tally.last_done = done
            if ok and done - due > TARGET_P99:
                self.tally.late.append((due, done - due))


def codes_ahead(tills: list[Till], plan: Plan, fixture: Fixture, rng: Random) -> None:
    """Gives each till the payment codes of its share of the run's requests (each one could be
    an authorization), made now rather than inside the measured time: at a real till the
    beneficiary's phone made the code, not the till. At most MAX_USABLE_CODES_PER_WALLET per
    wallet: making one more would retire one made for this run."""
    from wallet.payment_codes import MAX_USABLE_CODES_PER_WALLET

    wanted = math.ceil(plan.rate * (plan.warmup + plan.seconds) / plan.clients)
    wallets = list(fixture.wallets)
    rng.shuffle(wallets)
    count = min(wanted * len(tills), MAX_USABLE_CODES_PER_WALLET * len(wallets))
    started = time.perf_counter()
    codes = [scenario.payment_code(wallets[i % len(wallets)]) for i in range(count)]
    rng.shuffle(codes)
    for i, till in enumerate(tills):
        till.codes = codes[i :: len(tills)]
    print(
        f"codes: {count} payment codes made ahead in {time.perf_counter() - started:.1f} s "
        f"(wanted {wanted * len(tills)}; the rest are made during the run)"
    )


def processor_seconds(server, worker, database_url: str) -> tuple[float, float, float, float]:
    """The processor seconds so far of the server, this process, the Celery worker (0 without
    one) and the database's server processes: on two cores all four share them."""
    return (
        harness.process_group_cpu(server.pid),
        time.process_time(),
        harness.process_group_cpu(worker.pid) if worker is not None else 0.0,
        harness.database_backends_cpu(database_url),
    )


def run_load(
    plan: Plan, port: int, fixture: Fixture, seed: int, server, worker, database_url: str
) -> tuple[Tally, float]:
    run_id = uuid.uuid4().hex[:12]
    tills = [Till(i, plan, port, fixture, run_id, seed) for i in range(plan.clients)]
    if plan.codes_ahead:
        codes_ahead(tills, plan, fixture, Random(f"{seed}-{run_id}"))
    tickets = Tickets(plan.requests)
    stop = threading.Event()
    start = time.perf_counter() + 0.2
    measure_from = start + plan.warmup
    deadline = measure_from + plan.seconds
    method = "run_full" if plan.mode == "full" else "run_rate"
    threads = [
        threading.Thread(
            target=getattr(till, method),
            args=(start, measure_from, deadline, tickets, stop),
            name=f"till-{till.index}",
            daemon=True,
        )
        for till in tills
    ]
    # From the warm-up on: an episode that began in it is seen from its start.
    machine = episodes.Sampler(database_url) if plan.episodes else None
    if machine is not None:
        machine.start()
    for thread in threads:
        thread.start()
    cpu_from = None
    sampler = WaitSampler(database_url) if plan.sample_waits else None
    try:
        # Bounded: clients stop at the deadline; a request can take at most --timeout more.
        hard_stop = deadline + plan.timeout + 5
        while alive := [thread for thread in threads if thread.is_alive()]:
            if cpu_from is None and time.perf_counter() >= measure_from:
                if sampler is not None:
                    sampler.start()
                cpu_from = processor_seconds(server, worker, database_url)
            if server.poll() is not None and not stop.is_set():
                print(f"!!! the server exited with status {server.returncode} during the run")
                stop.set()
            if time.perf_counter() > hard_stop:
                print(f"!!! {len(alive)} clients still running past the deadline; left behind")
                stop.set()
                break
            alive[0].join(0.2)
    finally:
        stop.set()
        for till in tills:
            till.conn.close()
        if sampler is not None and sampler.is_alive():
            # Its session closes before the processor times are read: its time is not theirs.
            sampler.stop.set()
            sampler.join()
        if machine is not None and machine.is_alive():
            machine.stop()
    total = Tally()
    for till in tills:
        total.merge(till.tally)
    if sampler is not None:
        total.waits = sampler.waits
    if machine is not None:
        total.episodes = episodes.report(
            episodes.episodes(total.late, threshold=TARGET_P99),
            machine.samples,
            machine.names,
            origin=measure_from,
            threshold=TARGET_P99,
        )
    if cpu_from is not None:
        cpu_to = processor_seconds(server, worker, database_url)
        total.server_cpu, total.client_cpu, total.worker_cpu, total.database_cpu = (
            to - since for to, since in zip(cpu_to, cpu_from, strict=True)
        )
    elapsed = max(total.last_done - measure_from, 1e-9) if total.last_done else plan.seconds
    return total, elapsed


# The report.


def report(plan: Plan, tally: Tally, elapsed: float) -> None:
    done = sum(len(v) for v in tally.latencies.values())
    failed = sum(tally.connection_errors.values())
    print()
    if plan.mode == "rate":
        print(f"mode rate: {plan.rate:g} requests/s scheduled, {plan.clients} clients")
    else:
        print(f"mode full: {plan.clients} clients, each sending as soon as answered")
    print(f"measured: {done} requests answered in {elapsed:.2f} s -> {done / elapsed:.0f}/s")
    print(
        f"          after {plan.warmup:g} s of warm-up; {tally.connections} TCP connections opened"
    )
    if done:
        print(
            f"server processor time: {tally.server_cpu:.1f} s, "
            f"{ms(tally.server_cpu / done)} per request answered"
        )
        print(
            "per request answered, processor time of: "
            f"this client {ms(tally.client_cpu / done)}, "
            f"the Celery worker {ms(tally.worker_cpu / done)}, "
            f"PostgreSQL {ms(tally.database_cpu / done)}"
        )
    since = "scheduled time" if plan.mode == "rate" else "sending"
    print(f"latency, from {since} to the last byte of the answer:")
    print(f"  {'operation':<10} {'count':>7} {'share':>6} {'req/s':>7} {'p50':>10} {'p99':>10} "
          f"{'p99.9':>10} {'max':>10}")  # fmt: skip
    for op in OPERATIONS:
        values = tally.latencies[op]
        p50, p99, top = percentiles(values)
        share = len(values) / done if done else 0
        print(
            f"  {op:<10} {len(values):>7} {share:>6.1%} {len(values) / elapsed:>7.0f} "
            f"{ms(p50):>10} {ms(p99):>10} {ms(p999(values)):>10} {ms(top):>10}"
        )
    if plan.mode == "rate" and tally.lags:
        p50, p99, top = percentiles(tally.lags)
        late = sum(1 for lag in tally.lags if lag > 0.010)
        print(
            f"send lag behind schedule: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(top)}; "
            f"{late} of {len(tally.lags)} requests sent more than 10 ms late"
        )
    approved = tally.decisions["approved"] + tally.decisions["partially_approved"]
    declined = sum(tally.decisions.values()) - approved
    print(f"authorizations: {approved} approved, {declined} declined")
    for reason, count in tally.decisions.most_common():
        print(f"  {reason:<32} {count:>7}")
    if tally.unexpected:
        print("unexpected answers, warm-up included (operation, HTTP status, error code):")
        for (op, status, code), count in sorted(tally.unexpected.items()):
            print(f"  {op:<10} {status} {code:<36} {count:>7}")
    else:
        print("unexpected answers: none (every request got its 201)")
    if failed:
        print("connection errors, warm-up included (operation, exception):")
        for (op, name), count in sorted(tally.connection_errors.items()):
            print(f"  {op:<10} {name:<30} {count:>7}")
    else:
        print("connection errors: none")
    for (op, error), count in sorted(tally.client_errors.items()):
        print(f"!!! this script failed to handle a {op} answer {count} times: {error}")
    if tally.waits is not None:
        print("\n".join(tally.waits.lines(done)))
    if tally.episodes:
        print("\n".join(tally.episodes))


# A rate is held when every request of its step got its answer (no error) and the
# authorizations' latency, from their scheduled time, stays within the issue's targets.
TARGET_P99, TARGET_P999 = 0.050, 0.200
# The issue compares the highest rate held with the limit measured with eight clients.
LIMIT_CLIENTS = 8


@dataclass(frozen=True)
class Step:
    """One offered rate of rate mode and what it got."""

    rate: float  # requests per second scheduled
    requests: float  # requests per second answered
    authorizations: float  # authorizations per second answered
    p99: float
    p999: float
    errors: int  # unexpected answers, connection errors and this script's, warm-up included
    server_cpu: float = 0.0  # the server's processor seconds per request answered
    client_cpu: float = 0.0  # this client's, the same

    @classmethod
    def of(cls, plan: Plan, tally: Tally, elapsed: float) -> "Step":
        authorizations = tally.latencies["authorize"]
        errors = (
            sum(tally.unexpected.values())
            + sum(tally.connection_errors.values())
            + sum(tally.client_errors.values())
        )
        answered = sum(len(v) for v in tally.latencies.values())
        return cls(
            rate=plan.rate,
            requests=answered / elapsed,
            authorizations=len(authorizations) / elapsed,
            p99=percentiles(authorizations)[1],
            p999=p999(authorizations),
            errors=errors,
            server_cpu=tally.server_cpu / answered if answered else 0.0,
            client_cpu=tally.client_cpu / answered if answered else 0.0,
        )

    @property
    def held(self) -> bool:
        return (
            self.authorizations > 0
            and self.errors == 0
            and self.p99 <= TARGET_P99
            and self.p999 <= TARGET_P999
        )

    def __str__(self) -> str:
        return (
            f"  {self.rate:>8g} {self.requests:>9.0f} {self.authorizations:>9.0f} "
            f"{ms(self.p99):>10} {ms(self.p999):>10} {self.errors:>7} "
            f"{ms(self.server_cpu):>10} {ms(self.client_cpu):>10} "
            f"{'held' if self.held else 'NOT HELD':>9}"
        )


STEPS_HEADER = (
    f"  {'offered':>8} {'answered':>9} {'auth/s':>9} {'auth p99':>10} {'auth p99.9':>10} "
    f"{'errors':>7} {'srv cpu/r':>10} {'cli cpu/r':>10} {'':>9}"
)


def ramp(start: float, step: float, top: float) -> list[float]:
    """The rates --find-max offers in turn, from `start` by `step`, never past `top`."""
    count = math.floor((top - start) / step + 1e-9) + 1 if top >= start else 1
    return [round(start + i * step, 6) for i in range(count)]


def highest_held(steps: list[Step]) -> Step | None:
    """The step of the highest rate held below every rate that was not: a rate held after a
    lower one failed is luck of the moment, not a rate the server holds."""
    best = None
    for step in sorted(steps, key=lambda s: s.rate):
        if not step.held:
            break
        best = step
    return best


def server_error_count(tally: Tally) -> int:
    return sum(n for (_op, status, _code), n in tally.unexpected.items() if status >= 500)


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
        return value

    return parse


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 1: {text}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="DATABASE_URL must name a PostgreSQL database on this machine; it is dropped "
        "and created again.",
    )
    add = parser.add_argument
    add(
        "--mode",
        choices=["full", "rate"],
        default="full",
        help="full: every client sends as soon as answered (closed loop); rate: requests are "
        "scheduled at --rate per second in all (open loop) (default: full)",
    )
    add(
        "--rate",
        type=positive(float),
        help="total requests per second scheduled in rate mode (required with --mode rate)",
    )
    add(
        "--find-max",
        action="store_true",
        help="rate mode: offer --rate, then --rate-step more each time, until a rate is not "
        "held (an error, or the authorizations' p99 above 50 ms or p99.9 above 200 ms) or "
        "past --max-rate; prints the highest rate held and its ratio to the eight-client limit",
    )
    add(
        "--rate-step",
        type=positive(float),
        default=20.0,
        help="requests per second added at each step of --find-max (default: 20)",
    )
    add(
        "--max-rate",
        type=positive(float),
        default=1000.0,
        help="the highest rate --find-max offers (default: 1000)",
    )
    add(
        "--codes-ahead",
        action="store_true",
        help="rate mode: make each step's payment codes before it starts, not inside the "
        "measured time (at a real till, the beneficiary's phone made the code)",
    )
    add(
        "--sample-waits",
        action="store_true",
        help="sample what the database's sessions wait on while measured (a query every 10 ms "
        "on a connection of its own), and count the MultiXacts, rollbacks and deadlocks",
    )
    add(
        "--episodes",
        action="store_true",
        help="sample the machine ten times a second from each step's start (processes, cores, "
        "IO stalls, PostgreSQL's sessions) and print what ran during each episode of requests "
        "later than the p99 target (the sampler's processor counts as this client's)",
    )
    add(
        "--clients",
        type=positive(int),
        default=16,
        help="concurrent client threads, one HTTP connection each (default: 16)",
    )
    add(
        "--seconds",
        type=positive(float),
        help="measured duration, after the warm-up (default: 20; with --requests, a bound of 600)",
    )
    add(
        "--requests",
        type=positive(int),
        help="stop after this many measured requests (or at --seconds, whichever comes first)",
    )
    add(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before measuring, not counted (default: 2)",
    )
    add(
        "--server",
        choices=harness.SERVERS,
        default="gunicorn",
        help="the HTTP server: gunicorn, or granian (Rust, keep-alive) (default: gunicorn)",
    )
    add(
        "--workers",
        type=positive(int),
        default=4,
        help="server worker processes (default: 4)",
    )
    add(
        "--threads",
        type=positive(int),
        default=1,
        help="threads per worker: gunicorn's gthread workers above 1; granian's blocking "
        "threads (default: 1: gunicorn's sync workers)",
    )
    add(
        "--wallets",
        type=positive(int),
        default=10_000,
        help="wallets, each with 2 or 3 pockets (default: 10000)",
    )
    add(
        "--one-merchant",
        action="store_true",
        help="every authorization at the first merchant: one payable account takes every hold",
    )
    add(
        "--reuse",
        action="store_true",
        help="keep the database an earlier run built (same --wallets or fewer) instead of "
        "building it again",
    )
    harness.add_redis_arguments(parser)
    add(
        "--celery-workers",
        type=int,
        default=1,
        help="Celery worker processes taking the queued tasks; 0 for none (default: 1)",
    )
    add(
        "--capture-share",
        type=share,
        default=0.5,
        help="share of approved authorizations then captured by the same client (default: 0.5)",
    )
    add(
        "--partial-capture-share",
        type=share,
        default=0.3,
        help="share of captures that take only part of what is held (default: 0.3)",
    )
    add(
        "--refund-share",
        type=share,
        default=0.2,
        help="share of captured payments then refunded, whole or in part (default: 0.2)",
    )
    add(
        "--partial-approval-share",
        type=share,
        default=0.2,
        help="share of authorizations that allow a partial approval (default: 0.2)",
    )
    add(
        "--max-amount",
        type=positive(int),
        default=6_000,
        help="largest authorization in cents; amounts are drawn from 100 to it (default: 6000)",
    )
    add(
        "--timeout",
        type=positive(float),
        default=30.0,
        help="seconds a client waits for an answer before counting a connection error "
        "(default: 30)",
    )
    add("--seed", type=int, default=1, help="random seed of the data and the clients (default: 1)")
    add("--server-log", help="file for the server's output (default: a new file under /tmp)")
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    if args.mode == "rate" and args.rate is None:
        parser.error("--mode rate needs --rate")
    if args.mode == "full" and args.rate is not None:
        parser.error("--rate applies to --mode rate only")
    if not Path(sys.executable).with_name(args.server).exists():
        # An environment installed before granian became a dependency may lack it.
        parser.error(f"{args.server} is not installed beside this Python (pip install it)")
    if args.mode == "full" and (args.find_max or args.codes_ahead):
        parser.error("--find-max and --codes-ahead apply to --mode rate only")
    if args.warmup < 0:
        parser.error("--warmup cannot be negative")
    if args.max_amount < 100:
        parser.error("--max-amount must be at least 100")
    if args.seconds is None:
        args.seconds = 600.0 if args.requests else 20.0
    return args


def main() -> int:
    args = parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench(
        "http-load", redis=redis, limit_seconds=args.limit_seconds, log_path=args.server_log
    ) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    migrate_s = bench.setup(recreate=not args.reuse)
    print(f"migrate: {migrate_s:.1f} s")
    if args.reuse:
        fixture = scenario.reuse(wallets=args.wallets)
    else:
        fixture = scenario.build(wallets=args.wallets, seed=args.seed)
    plan = Plan(
        mode=args.mode,
        rate=args.rate or 0.0,
        clients=args.clients,
        warmup=args.warmup,
        seconds=args.seconds,
        requests=args.requests,
        capture_share=args.capture_share,
        partial_capture_share=args.partial_capture_share,
        refund_share=args.refund_share,
        partial_approval_share=args.partial_approval_share,
        max_amount=args.max_amount,
        timeout=args.timeout,
        one_merchant=args.one_merchant,
        codes_ahead=args.codes_ahead,
        sample_waits=args.sample_waits,
        episodes=args.episodes,
    )
    rates = ramp(args.rate, args.rate_step, args.max_rate) if args.find_max else [plan.rate]

    log_path = bench.log_path
    print(f"server log: {log_path}")
    port = harness.free_port()
    server = bench.start_server(
        port=port, workers=args.workers, threads=args.threads, server=args.server
    )
    worker = None
    if args.celery_workers > 0:
        worker = bench.start_celery(concurrency=args.celery_workers, beat=True)
    tally, steps, elapsed = Tally(), [], 0.0
    try:
        started = time.perf_counter()
        scenario.wait_ready(bench, server, port, fixture.keys[0])
        print(f"server: answering on {HOST}:{port} after {time.perf_counter() - started:.1f} s")
        print(f"postgres before the run: {bench.database_connections()}")
        for rate in rates:
            step_plan = dataclasses.replace(plan, rate=rate)
            step_tally, elapsed = run_load(
                step_plan, port, fixture, args.seed, server, worker, bench.url
            )
            report(step_plan, step_tally, elapsed)
            tally.merge(step_tally)
            if plan.mode == "rate":
                steps.append(Step.of(step_plan, step_tally, elapsed))
                print(STEPS_HEADER)
                print(steps[-1])
            if server.poll() is not None or (steps and not steps[-1].held):
                break
        died = server.poll()  # None while it runs: the only good answer
        print(f"postgres after the run: {bench.database_connections()}")
    except BaseException:
        bench.stop(server)
        print(f"--- tail of {log_path} ---\n{harness.log_tail(log_path)}")
        raise
    finally:
        bench.stop(server)
        if worker is not None:
            print(f"celery: {bench.redis.queue_length()} tasks still queued; stopping the worker")
            bench.stop(worker)
    print(f"server: stopped (exit status {server.returncode})")

    failures = []
    if died is not None:
        failures.append(f"the server exited during the run with status {died}")
    five_xx = server_error_count(tally)
    if five_xx:
        failures.append(f"{five_xx} server error(s) (5xx)")
        print()
        print("!" * 78)
        print(f"!!! {five_xx} SERVER ERRORS (5xx): see {log_path}")
        print("!" * 78)
        for line in tally.server_errors:
            print(f"  {line}")
    # A ramp ends on the first rate not held: its timeouts are its result, not a failure.
    connection_errors = 0 if args.find_max else sum(tally.connection_errors.values())
    if connection_errors:
        failures.append(f"{connection_errors} connection error(s)")
    client_errors = sum(tally.client_errors.values())
    if client_errors:
        failures.append(f"{client_errors} error(s) of the client script")
    if five_xx or connection_errors or died is not None:
        print(f"--- tail of {log_path} ---\n{harness.log_tail(log_path)}")
        print(f"--- exceptions in {log_path}, by count ---")
        for line, count in harness.log_exceptions(log_path).most_common(10):
            print(f"  {count:>6} x {line}")
    if not bench.verify_ledger():
        failures.append("the ledger does not verify")
    limit = bench.measure_limit(clients=LIMIT_CLIENTS if plan.mode == "rate" else args.workers)
    if steps:
        print_steps(steps, limit, args)
    elif limit is not None:
        print()
        authorizations = tally.latencies["authorize"]
        harness.print_against_limit(
            "authorizations",
            rate=len(authorizations) / elapsed,
            p50=percentiles(authorizations)[0],
            limit=limit,
        )
    print()
    print("RESULT: " + ("FAILED: " + "; ".join(failures) if failures else "ok"))
    return 1 if failures else 0


def print_steps(steps: list[Step], limit: harness.Limit | None, args: argparse.Namespace) -> None:
    server = f"{args.server}, {args.workers} workers x {args.threads} threads"
    traffic = "one merchant" if args.one_merchant else "11 merchants"
    print()
    print(
        f"rates offered ({server}; {traffic}; {args.clients} clients; held: no error, "
        f"authorizations' p99 <= {ms(TARGET_P99)} and p99.9 <= {ms(TARGET_P999)}):"
    )
    print(STEPS_HEADER)
    for step in steps:
        print(step)
    best = highest_held(steps)
    if limit is not None:
        print(limit)
    if best is None:
        print("highest rate held: none")
        return
    against = f": {best.authorizations / limit.rate:.3f}x the limit" if limit else ""
    print(
        f"highest rate held: {best.rate:g} requests/s offered, {best.authorizations:.0f} "
        f"authorizations/s (p99 {ms(best.p99)}, p99.9 {ms(best.p999)}){against}"
    )


if __name__ == "__main__":
    sys.exit(main())
