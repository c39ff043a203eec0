"""Benchmark: Stripe's real-time authorization webhook, against gunicorn and PostgreSQL.

Builds the data of bench/scenario.py's programs in a database of its own (one funder; food aid
in Isère, transport aid in France, health aid in Isère and Rhône; N wallets, each with an active
card known to Stripe and 2 or 3 pockets), starts `gunicorn config.wsgi` on a free port of
127.0.0.1, and sends `issuing_authorization.request` events, built and signed as Stripe does,
from C concurrent clients. Merchants vary (groceries, transport, pharmacies, a bar, shops outside
the zones) so that the engine approves, approves in part and declines. It prints the decision
time seen by the client (p50/p99/max, from sending to the last byte of the answer) and the
approve/decline counts, then runs `manage.py ledger verify` and measures the machine's limit with
as many connections as gunicorn has workers (bench/harness.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_stripe \\
        .venv/bin/python -m bench.stripe_webhook [--requests 1000] [--clients 8]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if any answer is not a 200 with a decision, if any decision took 2 s or
more (Stripe's budget), or if the ledger does not verify.
"""

import argparse
import http.client
import json
import sys
import threading
import time
from collections import Counter
from random import Random

import stripe

from bench import harness, scenario
from bench.harness import HOST, ms

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
        self.outcomes: Counter = Counter()
        self.problems: Counter = Counter()

    def send(self, body: dict) -> None:
        payload = json.dumps(body)
        header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
        sent = time.perf_counter()
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
        self.latencies.append(time.perf_counter() - sent)
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


def run_load(*, port, cards, requests: int, first: int, clients: int, seed: int, max_amount: int):
    rng = Random(seed)
    # Built and signed by the clients, but drawn here so that a run is reproducible.
    bodies = [
        request_event(rng, rng.choice(cards), n, max_amount) for n in range(first, first + requests)
    ]
    queues = [bodies[i::clients] for i in range(clients)]
    workers = [Client(port, timeout=30) for _ in range(clients)]

    def drive(client: Client, queue: list[dict]) -> None:
        for body in queue:
            client.send(body)

    threads = [
        threading.Thread(target=drive, args=pair) for pair in zip(workers, queues, strict=True)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in workers:
        client.conn.close()
    return workers, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50, help="requests sent before measuring")
    parser.add_argument("--max-amount", type=int, default=6_000)
    parser.add_argument("--seed", type=int, default=1)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    with harness.Bench(
        "stripe-webhook",
        limit_seconds=args.limit_seconds,
        settings={"STRIPE_WEBHOOK_SECRET": SECRET},
    ) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    cards = build(wallets=args.wallets, seed=args.seed)
    port = harness.free_port()
    server = bench.start_server(port=port, workers=args.workers)
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
        workers, elapsed = run_load(
            **load, requests=args.requests, first=args.warmup, seed=args.seed
        )
    finally:
        bench.stop(server)

    latencies = [value for client in workers for value in client.latencies]
    outcomes = sum((client.outcomes for client in workers), Counter())
    problems = sum((client.problems for client in workers), Counter())
    p50, p99, top = harness.percentiles(latencies)
    print()
    print(f"{args.clients} clients, {args.workers} gunicorn workers, server log {bench.log_path}")
    print(
        f"{len(latencies)} signed issuing_authorization.request answered in {elapsed:.2f} s "
        f"({len(latencies) / elapsed:.0f}/s)"
    )
    print(f"decision time: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(top)}")
    approved = outcomes["approved"] + outcomes["approved in part"]
    print(f"approved {approved} ({outcomes['approved in part']} in part), declined "
          f"{sum(outcomes.values()) - approved}")  # fmt: skip
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:<44} {count:>6}")
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
