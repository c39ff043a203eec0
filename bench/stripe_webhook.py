"""Benchmark: Stripe's real-time authorization webhook, against gunicorn and PostgreSQL.

Builds the data of bench/scenario.py's programs in a database of its own (one funder; food aid
in Isère, transport aid in France, health aid in Isère and Rhône; N wallets, each with an active
card known to Stripe and 2 or 3 pockets), starts `gunicorn config.wsgi` on a free port of
127.0.0.1 (BENCH_PORT if set), Redis as the cache and the Celery broker (both emptied first) and
one Celery worker taking the tasks the decisions queue (the beneficiaries' notices), and sends
`issuing_authorization.request` events, built and signed as Stripe does. Merchants vary
(groceries, transport, pharmacies, a bar, shops outside the zones) so that the engine approves,
approves in part and declines.

Modes: `full` sends --requests events from C concurrent clients, each sending its next one as
soon as answered (closed loop: the server's best throughput), and times each from sending to the
last byte of the answer. `rate` schedules events on a clock at --rate per second in all for
--seconds (open loop, bench/harness.py's due_times, as bench/http_load.py's rate mode) and times
each from its scheduled time, so time spent queueing behind a busy server counts: that is the
decision time Stripe sees at a fixed offered rate. Both print p50/p99/p99.9/max and the
approve/decline counts, then run `manage.py ledger verify` and measure the machine's limit with
as many connections as gunicorn has workers (bench/harness.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_stripe \\
        .venv/bin/python -m bench.stripe_webhook [--requests 1000] [--clients 8]
    DATABASE_URL=... .venv/bin/python -m bench.stripe_webhook --mode rate --rate 100 --seconds 30

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if any answer is not a 200 with a decision, if any decision took 2 s or
more (Stripe's budget), or if the ledger does not verify.
"""

import argparse
import cProfile
import http.client
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from random import Random

import stripe

from bench import api_profile, harness, scenario
from bench.harness import HOST, ms, p999, percentiles

SECRET = "whsec_bench_h9hooks"
STRIPE_BUDGET = 2.0  # seconds Stripe waits for the answer

# (Stripe category, MCC, city, postcode, share of the traffic).
MERCHANTS = [
    ("grocery_stores_supermarkets", "5411", "GRENOBLE", "38000", 6),
    ("bakeries", "5462", "ECHIROLLES", "38130", 3),
    ("commuter_transport_and_ferries", "4111", "GRENOBLE", "38000", 4),
    ("passenger_railways", "4112", "LYON", "69003", 2),
    ("drug_stores_and_pharmacies", "5912", "LYON", "69004", 2),
    ("grocery_stores_supermarkets", "5411", "CHAMBERY", "73000", 1),
    ("drinking_places", "5813", "GRENOBLE", "38000", 1),
]


def build(*, wallets: int, seed: int) -> list[str]:
    """The programs of bench/scenario.py and `wallets` wallets with a card and 2 or 3 pockets;
    returns the Stripe card ids."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from tests.factories import CardFactory, make_allocation

    started = time.perf_counter()
    rng = Random(seed)
    now = timezone.now()
    food, transport, health = scenario.funder_with_programs()
    cards = []
    for start in range(0, wallets, scenario.WALLETS_PER_COMMIT):
        with transaction.atomic():
            for w in range(start, min(start + scenario.WALLETS_PER_COMMIT, wallets)):
                beneficiary = scenario.beneficiary(w)
                for program in [food, transport] + ([health] if rng.random() < 0.5 else []):
                    make_allocation(
                        program=program,
                        beneficiary=beneficiary,
                        amount=rng.randrange(15_000, 60_000),
                        valid_from=now - timedelta(days=1),
                        valid_until=now + timedelta(days=90),
                    )
                card = CardFactory(wallet=beneficiary.wallet, stripe_card_id=f"ic_bench{w}")
                cards.append(card.stripe_card_id)
    print(f"set-up: {wallets} wallets with a card, in {time.perf_counter() - started:.1f} s")
    scenario.analyze()
    connection.close()
    return cards


def request_event(rng: Random, card: str, n: int, max_amount: int) -> dict:
    category, mcc, city, postcode, _ = rng.choices(MERCHANTS, [m[-1] for m in MERCHANTS])[0]
    amount = rng.randrange(100, max_amount)
    now = int(time.time())
    authorization = {
        "id": f"iauth_bench{n:07d}",
        "object": "issuing.authorization",
        "amount": 0,
        "approved": False,
        "authorization_method": "chip",
        "card": {"id": card, "object": "issuing.card", "currency": "eur", "last4": "4242"},
        "created": now,
        "currency": "eur",
        "livemode": False,
        "merchant_amount": 0,
        "merchant_currency": "eur",
        "merchant_data": {
            "category": category,
            "category_code": mcc,
            "city": city,
            "country": "FR",
            "name": f"SHOP {mcc} {city}",
            "network_id": f"NET{mcc}{postcode}",
            "postal_code": postcode,
        },
        "metadata": {},
        "pending_request": {
            "amount": amount,
            "currency": "eur",
            "is_amount_controllable": rng.random() < 0.2,
            "merchant_amount": amount,
            "merchant_currency": "eur",
        },
        "request_history": [],
        "status": "pending",
    }
    return {
        "id": f"evt_bench{n:07d}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": now,
        "data": {"object": authorization},
        "livemode": False,
        "type": "issuing_authorization.request",
    }


class Client:
    def __init__(self, port: int, timeout: float):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.latencies: list[float] = []
        self.lags: list[float] = []  # rate mode: send time - scheduled time
        self.outcomes: Counter = Counter()
        self.problems: Counter = Counter()

    def send(self, body: dict, due: float | None = None) -> None:
        """One event, signed now as Stripe would; its latency runs from `due` (rate mode: the
        scheduled time) or else from the moment it is sent."""
        payload = json.dumps(body)
        header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
        sent = time.perf_counter()
        if due is not None:
            self.lags.append(sent - due)
        try:
            self.conn.request(
                "POST",
                "/hooks/stripe",
                body=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.problems[f"connection: {type(exc).__name__}"] += 1
            return
        self.latencies.append(time.perf_counter() - (sent if due is None else due))
        if response.status != 200 or not response.getheader("Stripe-Version"):
            self.problems[f"HTTP {response.status}"] += 1
            return
        answer = json.loads(raw)
        if not answer["approved"]:
            self.outcomes[f"declined: {answer.get('metadata', {}).get('reason')}"] += 1
        elif "amount" in answer:
            self.outcomes["approved in part"] += 1
        else:
            self.outcomes["approved"] += 1


def _bodies(*, cards, requests: int, first: int, seed: int, max_amount: int) -> list[dict]:
    rng = Random(seed)
    # Built and signed by the clients, but drawn here so that a run is reproducible.
    return [
        request_event(rng, rng.choice(cards), n, max_amount) for n in range(first, first + requests)
    ]


def _drive(threads: list[threading.Thread], clients: list[Client]) -> float:
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.conn.close()
    return elapsed


def run_load(*, port, cards, requests: int, first: int, clients: int, seed: int, max_amount: int):
    """Closed loop: each client sends its next event as soon as the last one is answered."""
    bodies = _bodies(cards=cards, requests=requests, first=first, seed=seed, max_amount=max_amount)
    queues = [bodies[i::clients] for i in range(clients)]
    workers = [Client(port, timeout=30) for _ in range(clients)]

    def drive(client: Client, queue: list[dict]) -> None:
        for body in queue:
            client.send(body)

    threads = [
        threading.Thread(target=drive, args=pair) for pair in zip(workers, queues, strict=True)
    ]
    return workers, _drive(threads, workers)


def run_rate(
    *, port, cards, rate: float, seconds: float, first: int, clients: int, seed: int, max_amount
):
    """Open loop: event k of the run is due at start + k / rate, whether or not the server has
    answered the ones before; its latency runs from that time."""
    requests = math.ceil(rate * seconds)
    bodies = _bodies(cards=cards, requests=requests, first=first, seed=seed, max_amount=max_amount)
    workers = [Client(port, timeout=30) for _ in range(clients)]
    stop = threading.Event()
    start = time.perf_counter() + 0.2
    deadline = start + requests / rate

    def drive(index: int, client: Client) -> None:
        schedule = harness.due_times(
            index=index, clients=clients, rate=rate, start=start, deadline=deadline, stop=stop
        )
        for n, due in enumerate(schedule):
            client.send(bodies[index + n * clients], due)

    threads = [
        threading.Thread(target=drive, args=(index, client), daemon=True)
        for index, client in enumerate(workers)
    ]
    _drive(threads, workers)
    # The time the schedule spans, plus however long the last answers came after it.
    return workers, max(deadline, time.perf_counter()) - start


def webhook_environ(body: dict) -> dict:
    """The WSGI environ of one signed delivery, as a server's worker gets it."""
    payload = json.dumps(body).encode()
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), SECRET)
    return api_profile.post_environ("/hooks/stripe", payload, {"HTTP_STRIPE_SIGNATURE": header})


def profile(bench: harness.Bench, args: argparse.Namespace) -> int:
    """--mode profile: --requests deliveries through Django's WSGI handler in this process, one
    after the other, as a server's worker runs them; each one's whole, database, Redis and
    processor time, then cProfile (processor time) of the same path, by own and cumulative
    time. The signing is done before each batch: it is Stripe's work, not ours."""
    from django.core.handlers.wsgi import WSGIHandler

    cards = build(wallets=args.wallets, seed=args.seed)
    application = WSGIHandler()
    database, redis_commands = api_profile.DatabaseTime(), api_profile.RedisCommands()
    first = 0

    def batch(count: int, seed: int) -> list[dict]:
        nonlocal first
        bodies = _bodies(
            cards=cards, requests=count, first=first, seed=seed, max_amount=args.max_amount
        )
        first += count
        return [webhook_environ(body) for body in bodies]

    def timed(environs: list[dict]) -> None:
        # Stripe's answer to a decision is 200.
        api_profile.timed(application, environs, database, redis_commands, expected=200)

    timed(batch(args.warmup, args.seed + 1))
    measured, refused, statements, commands = api_profile.measured_batches(
        application,
        (
            batch(min(100, args.requests - start), args.seed + 2 + start)
            for start in range(0, args.requests, 100)
        ),
        database,
        redis_commands,
        expected=200,
    )
    profiled = batch(min(args.requests, 300), args.seed)
    # Processor time, not wall time: waits for the database or for a busy core would bury the
    # Python this profile is for.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    timed(profiled)
    profiler.disable()
    limit = bench.measure_limit(clients=1)  # one delivery at a time: the one-client limit

    print()
    print(f"{len(measured)} issuing_authorization.request, in-process WSGI, {refused} not 200")
    api_profile.report(
        what="in-process", noun="webhook", measured=measured, statements=statements,
        commands=commands, limit=limit, profiler=profiler, profiled=len(profiled), top=args.top,
    )  # fmt: skip
    return 1 if refused else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        choices=["full", "rate", "profile"],
        default="full",
        help="full: --requests sent by --clients, each as soon as answered (closed loop); rate: "
        "events scheduled at --rate per second in all for --seconds (open loop); profile: "
        "--requests one after the other through Django's WSGI handler in this process, with "
        "cProfile (default: full)",
    )
    parser.add_argument("--rate", type=float, help="events per second in rate mode")
    parser.add_argument("--seconds", type=float, default=30.0, help="rate mode's duration")
    parser.add_argument("--requests", type=int, default=1_000, help="full mode's events")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per gunicorn worker: above 1, gthread workers (default: 1, sync workers)",
    )
    parser.add_argument(
        "--celery-workers",
        type=int,
        default=1,
        help="Celery worker processes taking the queued tasks; 0 for none (default: 1)",
    )
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50, help="requests sent before measuring")
    parser.add_argument("--max-amount", type=int, default=6_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=35, help="profile mode's functions printed")
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    if (args.mode == "rate") != (args.rate is not None):
        parser.error("--rate goes with --mode rate, and --mode rate needs it")
    if args.rate is not None and (args.rate <= 0 or args.seconds <= 0):
        parser.error("--rate and --seconds must be more than 0")
    with harness.Bench(
        "stripe-webhook",
        redis=harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url),
        limit_seconds=args.limit_seconds,
        settings={"STRIPE_WEBHOOK_SECRET": SECRET},
    ) as bench:
        if args.mode == "profile":
            # What bench.harness.Bench.start_server gives the servers.
            os.environ |= {
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "CONN_MAX_AGE": "60",
                "LOG_LEVEL": "WARNING",
            }
            bench.setup()
            return profile(bench, args)
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    cards = build(wallets=args.wallets, seed=args.seed)
    port = harness.free_port()
    server = bench.start_server(port=port, workers=args.workers, threads=args.threads)
    worker = (
        bench.start_celery(concurrency=args.celery_workers, beat=True)
        if args.celery_workers
        else None
    )
    try:
        # An unsigned body: the endpoint answers 400 without touching the data.
        bench.wait_ready(server, port, method="POST", path="/hooks/stripe", body=b"{}", status=400)
        load = {
            "port": port,
            "cards": cards,
            "clients": args.clients,
            "max_amount": args.max_amount,
        }
        run_load(**load, requests=args.warmup, first=0, seed=args.seed + 1)
        # Processor time of the server's process group (its master and workers) and of the
        # Celery worker's over the measured events: what one webhook costs, whatever share of
        # the cores the machine's other work leaves them.
        cpu_from = harness.process_group_cpu(server.pid)
        celery_from = harness.process_group_cpu(worker.pid) if worker is not None else 0.0
        if args.mode == "rate":
            workers, elapsed = run_rate(
                **load, rate=args.rate, seconds=args.seconds, first=args.warmup, seed=args.seed
            )
        else:
            workers, elapsed = run_load(
                **load, requests=args.requests, first=args.warmup, seed=args.seed
            )
        server_cpu = harness.process_group_cpu(server.pid) - cpu_from
        celery_cpu = (harness.process_group_cpu(worker.pid) - celery_from) if worker else 0.0
    finally:
        bench.stop(server)
        if worker is not None:
            print(f"celery: {bench.redis.queue_length()} tasks still queued; stopping the worker")
            bench.stop(worker)

    latencies = [value for client in workers for value in client.latencies]
    lags = [value for client in workers for value in client.lags]
    outcomes = sum((client.outcomes for client in workers), Counter())
    problems = sum((client.problems for client in workers), Counter())
    p50, p99, top = percentiles(latencies)
    print()
    server_shape = f"{args.workers} gunicorn workers" + (
        f" of {args.threads} threads" if args.threads > 1 else " (sync)"
    )
    if args.mode == "rate":
        print(
            f"mode rate: {args.rate:g} events/s scheduled for {args.seconds:g} s, "
            f"{args.clients} clients, {server_shape}, server log {bench.log_path}"
        )
    else:
        print(f"mode full: {args.clients} clients, {server_shape}, server log {bench.log_path}")
    print(
        f"{len(latencies)} signed issuing_authorization.request answered in {elapsed:.2f} s "
        f"({len(latencies) / elapsed:.0f}/s)"
    )
    if latencies:
        print(
            f"server processor time: {server_cpu:.1f} s, {ms(server_cpu / len(latencies))} per "
            f"webhook answered; Celery worker: {ms(celery_cpu / len(latencies))} per webhook"
        )
    since = "its scheduled time" if args.mode == "rate" else "sending"
    print(
        f"decision time, from {since} to the last byte of the answer: p50 {ms(p50)}, "
        f"p99 {ms(p99)}, p99.9 {ms(p999(latencies))}, max {ms(top)}"
    )
    if lags:
        lag50, lag99, lag_top = percentiles(lags)
        late = sum(1 for lag in lags if lag > 0.010)
        print(
            f"send lag behind schedule: p50 {ms(lag50)}, p99 {ms(lag99)}, max {ms(lag_top)}; "
            f"{late} of {len(lags)} events sent more than 10 ms late"
        )
    approved = outcomes["approved"] + outcomes["approved in part"]
    print(f"approved {approved} ({outcomes['approved in part']} in part), declined "
          f"{sum(outcomes.values()) - approved}")  # fmt: skip
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:<44} {count:>6}")
    print(f"errors: {sum(problems.values())}")
    for problem, count in problems.most_common():
        print(f"  {problem:<44} {count:>6}")
    failures = [f"{problem}: {count}" for problem, count in problems.items()]
    if top >= STRIPE_BUDGET:
        failures.append(f"slowest answer {ms(top)}, beyond Stripe's {STRIPE_BUDGET:g} s")
    if not bench.verify_ledger():
        failures.append("the ledger does not verify")
    limit = bench.measure_limit(clients=args.workers)
    if limit is not None:
        print()
        harness.print_against_limit(
            "decisions", rate=len(latencies) / elapsed, p50=p50, limit=limit
        )
    print()
    print("RESULT: " + ("FAILED: " + "; ".join(failures) if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
