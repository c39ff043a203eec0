"""Benchmark and proof: many tills authorizing against one wallet at once, over HTTP.

Builds one beneficiary with one pocket of --money cents and one merchant, starts gunicorn, and
lets C client threads (64 by default, each with its own connection) send authorizations of 5 to
50 euros with that one wallet's payment codes as fast as they are answered, all starting
together. The codes (one per request) are made before the clients start, so that only the
authorizations are measured; to hold that many at once, the script lifts the cap of usable codes
per wallet in its own process, which makes them (the server only redeems them). The wallet runs
dry part-way through, so the last payments race for the last euros: some are partially
approved, the rest declined for insufficient funds.

Then it checks, against the ledger: the sum of what the answers approved equals the sum of the
decisions recorded and the pocket's held amount, and never exceeds the money granted (no
overspend); the pocket's balance minus what it holds is not negative; no answer was a 5xx, a
409 or a connection error (a deadlock or a lock timeout shows up as one of them); and
`manage.py ledger verify` passes. Exit status 1 on any violation. Last, the machine's limit
with as many connections as gunicorn has workers (bench/harness.py).

What the wallet's lock is held for (`--sample-lock`): while the tills run, a sampler looks every
few milliseconds at the database session that holds the lock the others wait for
(`pg_blocking_pids`) and counts what it is doing: running a statement (by its first words),
waiting for the WAL at COMMIT, or idle in its transaction while the server's Python works (by
the statement it ran last). With the share of samples in which someone waited, that gives the
lock's hold time per payment and what it is made of. It always prints the processor time per
authorization of the server and of PostgreSQL: on a shared machine, the figures that compare.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_hot \\
        .venv/bin/python -m bench.hot_wallet [--clients 64] [--requests 20] [--workers 4] \\
        [--server gunicorn|granian] [--sample-lock]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
"""

import argparse
import http.client
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from random import Random

from bench import harness, scenario
from bench.harness import HOST, ms
from bench.scenario import API

RULES = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"departements": ["38"]},
    "schedule": scenario.EVERY_DAY,
}


def build(*, money: int, codes: int) -> tuple[list[str], str, int]:
    """`codes` payment codes of the wallet, the merchant's API key secret and the pocket's
    account id."""
    from django.db import connection

    from merchants.services import api_key_create
    from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code
    from wallet import payment_codes

    (program,) = scenario.funder_with_programs(rules_by_name=[("Aide alimentaire Isère", RULES)])
    key = api_key_create(merchant=scenario.merchant(0), name="till 1")[1]
    beneficiary = BeneficiaryFactory(
        first_name="Bénéficiaire", last_name="Unique", email="", postcode="38000"
    )
    allocation = make_allocation(program=program, beneficiary=beneficiary, amount=money)
    payment_codes.MAX_USABLE_CODES_PER_WALLET = codes
    made = [make_payment_code(beneficiary.wallet) for _ in range(codes)]
    account_id = allocation.pocket.account_id
    connection.close()
    return made, key, account_id


class Client:
    def __init__(self, index: int, port: int, codes: list[str], key: str, timeout):
        self.index = index
        self.rng = Random(index)
        self.codes, self.key, self.requests = codes, key, len(codes)
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.prefix = f"hot-{uuid.uuid4().hex[:8]}-{index}-"
        self.latencies: list[float] = []
        self.approved = 0
        self.outcomes: Counter = Counter()
        self.failures: Counter = Counter()  # (status or exception, error code)

    def run(self, barrier: threading.Barrier) -> None:
        barrier.wait()
        for n in range(self.requests):
            body = {
                "amount": self.rng.randint(500, 5_000),
                "currency": "EUR",
                "payment_code": self.codes[n],
                "partial_approval_allowed": self.rng.random() < 0.3,
            }
            headers = {
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{self.prefix}{n}",
            }
            sent = time.perf_counter()
            try:
                self.conn.request("POST", f"{API}/authorizations", json.dumps(body), headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self.failures[(type(exc).__name__, "-")] += 1
                continue
            self.latencies.append(time.perf_counter() - sent)
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            if response.status != 201:
                code = (data.get("error") or {}).get("code", "-") if isinstance(data, dict) else "-"
                self.failures[(str(response.status), code)] += 1
                continue
            self.approved += data.get("approved_amount") or 0
            status = data.get("status")
            # A partial approval carries the reason it is partial: count it as a partial.
            if status == "declined":
                status = (data.get("decline") or {}).get("code") or status
            self.outcomes[status] += 1


class LockSampler(threading.Thread):
    """What the session holding the lock others wait for is doing, sampled every `period`
    seconds on a connection of its own: (state, wait event, statement) -> samples."""

    # The holders of the locks waited for in this database, and what each is doing. The first
    # till to wait for the wallet's row takes the row's tuple lock and waits for the holder's
    # transaction; the next ones wait for that till: a holder itself waiting is not the one
    # that holds the wallet.
    QUERY = """
        SELECT h.state, COALESCE(h.wait_event_type || ':' || h.wait_event, ''), h.query
        FROM pg_stat_activity h
        WHERE h.pid IN (
            SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w
            WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
        ) AND h.wait_event_type IS DISTINCT FROM 'Lock'
    """

    def __init__(self, url: str, period: float = 0.003):
        super().__init__(name="lock-sampler", daemon=True)
        self.url, self.period = url, period
        self.samples = 0  # looks taken
        self.held = 0  # looks that found a holder
        self.holders = 0  # looks that found more than one (a lock other than the wallet's)
        self.seen: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(self.QUERY).fetchall()
                self.samples += 1
                if rows:
                    self.held += 1
                    self.holders += len(rows) > 1
                    state, event, query = rows[0]
                    self.seen[(state, event, statement_label(query))] += 1
                self.stop.wait(self.period)

    def report(self, payments: int, elapsed: float) -> None:
        if not self.samples or not self.held or not payments:
            print("lock holder: no sample found a till waiting")
            return
        hold = elapsed * self.held / self.samples / payments
        print(
            f"lock holder: {self.samples} samples, a till waiting in {self.held / self.samples:.0%}"
            f" ({self.holders} with two holders): the lock held about {ms(hold)} per payment, of"
            " which:"
        )
        for (state, event, label), count in self.seen.most_common(14):
            doing = "in its Python, after" if state == "idle in transaction" else state
            print(
                f"  {count / self.held:>6.1%} {ms(hold * count / self.held):>9}  "
                f"{doing:<22} {event:<22} {label}"
            )


def statement_label(query: str) -> str:
    """A statement's first words, a literal or parameter list cut: enough to tell the lock,
    the read, the write and COMMIT apart. The hot path's statements are prepared by name
    (core/prepared.py): `EXECUTE name(values)`, whose name differs from one connection to the
    next; they are told apart by their values (the lock has two, the read a dozen) and the
    COMMIT sent with the write. PostgreSQL cuts the text it shows (track_activity_query_size,
    1 kB): only the write, with its decision's JSON, is that long."""
    text = re.sub(r"\s+", " ", query).strip()
    if "FOR UPDATE OF w" in text:
        return "the wallet's lock: " + text[:40]
    first = text.startswith("PREPARE ")
    if first:  # a statement's first run on its connection
        text = text.partition("; EXECUTE ")[2]
        if not text:
            return "(first run) PREPARE, its text cut"
        text = f"EXECUTE {text}"
    if not text.startswith("EXECUTE "):
        return text[:70]
    run = re.fullmatch(r"EXECUTE \w+\((.*)\)(; COMMIT)?", re.sub(r"'(?:[^']|'')*'", "?", text))
    if run is None or run[2]:
        label = "the write and its COMMIT: EXECUTE ...; COMMIT"
    elif run[1].count(",") == 1:
        label = "the wallet's lock: EXECUTE, 2 values"
    else:
        label = f"the read: EXECUTE, {run[1].count(',') + 1} values"
    return ("(first run) " if first else "") + label


def ledger_state(account_id: int) -> dict:
    from django.db.models import Sum

    from ledger.models import Account
    from wallet.models.decisions import Decision

    account = Account.objects.get(pk=account_id)
    decided = Decision.objects.aggregate(total=Sum("approved_amount"))["total"] or 0
    return {"balance": account.balance, "pending": account.pending, "decided": decided}


def processor_seconds(server, url: str) -> tuple[float, float]:
    """The processor seconds so far of the server's processes and of the database's."""
    return harness.process_group_cpu(server.pid), harness.database_backends_cpu(url)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent tills (default: 64)")
    parser.add_argument(
        "--requests", type=int, default=20, help="authorizations per till (default: 20)"
    )
    parser.add_argument("--workers", type=int, default=4, help="server workers (default: 4)")
    parser.add_argument(
        "--server",
        choices=harness.SERVERS,
        default="gunicorn",
        help="the HTTP server: gunicorn (sync workers) or granian (default: gunicorn)",
    )
    parser.add_argument(
        "--money",
        type=int,
        default=1_500_000,
        help="cents granted to the one pocket; the default runs dry part-way (default: 1500000)",
    )
    parser.add_argument(
        "--sample-lock",
        action="store_true",
        help="sample what the session holding the wallet's lock does (a query every 3 ms on a "
        "connection of its own, which takes its share of the machine)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("hot-wallet", redis=redis, limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    codes, key, account_id = build(money=args.money, codes=args.clients * args.requests)

    print(f"server log: {bench.log_path}")
    port = harness.free_port()
    server = bench.start_server(port=port, workers=args.workers, server=args.server)
    per_client = args.requests
    clients = [
        Client(i, port, codes[i * per_client : (i + 1) * per_client], key, args.timeout)
        for i in range(args.clients)
    ]
    try:
        scenario.wait_ready(bench, server, port, key)
        barrier = threading.Barrier(args.clients + 1)
        threads = [threading.Thread(target=c.run, args=(barrier,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        cpu_from = processor_seconds(server, bench.url)
        sampler = LockSampler(bench.url) if args.sample_lock else None
        if sampler is not None:
            sampler.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if sampler is not None:
            # Its session closed before the reading: its processor time is not the payments'.
            sampler.stop.set()
            sampler.join()
        cpu_to = processor_seconds(server, bench.url)
        cpu = [to - since for to, since in zip(cpu_to, cpu_from, strict=True)]
        died = server.poll()
    finally:
        bench.stop(server)

    latencies = [value for c in clients for value in c.latencies]
    outcomes = sum((c.outcomes for c in clients), Counter())
    failures = sum((c.failures for c in clients), Counter())
    approved = sum(c.approved for c in clients)
    p50, p99, top = harness.percentiles(latencies)
    print()
    print(
        f"{args.clients} clients x {args.requests} authorizations at one wallet of {args.money} "
        f"cents, {args.workers} {args.server} workers"
    )
    print(
        f"answered: {len(latencies)} in {elapsed:.2f} s -> {len(latencies) / elapsed:.0f}/s; "
        f"latency p50 {ms(p50)}, p99 {ms(p99)}, max {ms(top)}"
    )
    if latencies:
        print(
            f"processor time per authorization: server {ms(cpu[0] / len(latencies))}, "
            f"PostgreSQL {ms(cpu[1] / len(latencies))}"
        )
    if sampler is not None:
        sampler.report(len(latencies), elapsed)
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:<32} {count:>7}")
    for (status, code), count in sorted(failures.items()):
        print(f"  !!! {status} {code:<30} {count:>7}")

    state = ledger_state(account_id)
    print(
        f"approved in the answers: {approved}; decisions recorded: {state['decided']}; "
        f"pocket: balance {state['balance']}, held {state['pending']}, granted {args.money}"
    )
    problems = []
    if approved != state["decided"] or approved != state["pending"]:
        problems.append("the answers, the decisions and the held amount disagree")
    if state["pending"] > args.money or state["balance"] - state["pending"] < 0:
        problems.append("OVERSPEND: more held than the pocket has")
    if failures:
        problems.append(f"{sum(failures.values())} failed request(s) (5xx, 409 or connection)")
    if died is not None:
        problems.append(f"gunicorn exited during the run with status {died}")
    deadlocks = {
        line: n
        for line, n in harness.log_exceptions(bench.log_path).items()
        if "deadlock" in line.lower() or "lock" in line.lower()
    }
    if deadlocks:
        problems.append(f"lock errors in the server log: {deadlocks}")
    if not bench.verify_ledger():
        problems.append("the ledger does not verify")
    limit = bench.measure_limit(clients=args.workers)
    if limit is not None:
        print()
        harness.print_against_limit(
            "authorizations", rate=len(latencies) / elapsed, p50=p50, limit=limit
        )
    print()
    print("RESULT: " + ("FAILED: " + "; ".join(problems) if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
