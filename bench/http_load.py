"""Benchmark: the merchant API over HTTP, against gunicorn and PostgreSQL.

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
        .venv/bin/python -m bench.http_load [--mode full|rate] [--rate 300] [--seconds 20]

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

Each client keeps one http.client connection and reopens it whenever it is closed; gunicorn's
sync workers close it after every answer, so "TCP connections opened" is about the number of
requests (a server with keep-alive would show one per client).

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if any request got a 5xx or a connection error, if gunicorn died during
the run, or if the ledger does not verify. Figures on a 2-core machine shared by server,
database and clients are noisy.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from random import Random

from bench import harness, scenario
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

    def merge(self, other: "Tally") -> None:
        for op in OPERATIONS:
            self.latencies[op] += other.latencies[op]
        self.lags += other.lags
        self.decisions += other.decisions
        self.unexpected += other.unexpected
        self.connection_errors += other.connection_errors
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors[: max(0, 10 - len(self.server_errors))]
        self.connections += other.connections
        self.last_done = max(self.last_done, other.last_done)


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
                "payment_code": scenario.payment_code(rng.choice(self.fixture.wallets)),
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


def run_load(plan: Plan, port: int, fixture: Fixture, seed: int, server) -> tuple[Tally, float]:
    run_id = uuid.uuid4().hex[:12]
    tills = [Till(i, plan, port, fixture, run_id, seed) for i in range(plan.clients)]
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
    for thread in threads:
        thread.start()
    try:
        # Bounded: clients stop at the deadline; a request can take at most --timeout more.
        hard_stop = deadline + plan.timeout + 5
        while alive := [thread for thread in threads if thread.is_alive()]:
            if server.poll() is not None and not stop.is_set():
                print(f"!!! gunicorn exited with status {server.returncode} during the run")
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
    total = Tally()
    for till in tills:
        total.merge(till.tally)
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
        "--workers",
        type=positive(int),
        default=4,
        help="gunicorn worker processes (default: 4)",
    )
    add(
        "--threads",
        type=positive(int),
        default=1,
        help="threads per gunicorn worker: above 1, gthread workers (default: 1, sync workers)",
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
    add("--server-log", help="file for gunicorn's output (default: a new file under /tmp)")
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    if args.mode == "rate" and args.rate is None:
        parser.error("--mode rate needs --rate")
    if args.mode == "full" and args.rate is not None:
        parser.error("--rate applies to --mode rate only")
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
    )

    log_path = bench.log_path
    print(f"server log: {log_path}")
    port = harness.free_port()
    server = bench.start_server(port=port, workers=args.workers, threads=args.threads)
    worker = None
    if args.celery_workers > 0:
        worker = bench.start_celery(concurrency=args.celery_workers)
    try:
        started = time.perf_counter()
        scenario.wait_ready(bench, server, port, fixture.keys[0])
        print(f"server: answering on {HOST}:{port} after {time.perf_counter() - started:.1f} s")
        print(f"postgres before the run: {bench.database_connections()}")
        tally, elapsed = run_load(plan, port, fixture, args.seed, server)
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

    report(plan, tally, elapsed)
    failures = []
    if died is not None:
        failures.append(f"gunicorn exited during the run with status {died}")
    five_xx = server_error_count(tally)
    if five_xx:
        failures.append(f"{five_xx} server error(s) (5xx)")
        print()
        print("!" * 78)
        print(f"!!! {five_xx} SERVER ERRORS (5xx): see {log_path}")
        print("!" * 78)
        for line in tally.server_errors:
            print(f"  {line}")
    connection_errors = sum(tally.connection_errors.values())
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
    limit = bench.measure_limit(clients=args.workers)
    if limit is not None:
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


if __name__ == "__main__":
    sys.exit(main())
