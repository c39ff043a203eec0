"""Proof: SIGKILL the server and a Celery worker in the middle of a load, restart them, let the
clients retry with their idempotency keys, and check that no payment was lost or doubled.

Builds wallets and merchants as bench/http_load.py does (bench/scenario.py, fewer wallets),
starts gunicorn and one Celery worker (Redis broker), and runs C client threads until --after
seconds past the restart. Each client pays, then, for an approved payment, captures it (whole or
part, half the time) and refunds part of some captures, or reverses it (a fifth of the time), or
leaves it held. Every request carries its own Idempotency-Key; a request that got no answer (the
connection reset by the kill, or refused while the server is down) or a 5xx is sent again, same
body and same key, until it gets one. At --kill-at seconds the gunicorn master and its workers
and the Celery worker (and its pool) get SIGKILL; after --down seconds they are started again.

Then, against the database: each authorization key has exactly one decision, the one its answer
named, with the amount approved the answer gave; each capture, reversal and refund key has
exactly one record with the answered amount, and there is no record the clients did not ask
for; the holds of every approved payment are all posted or voided after a capture, all voided
after a reversal, all still pending when the client left it; the Celery queue drains after the
restart; and `manage.py ledger verify` passes. Exit status 1 on any violation.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_crash \\
        .venv/bin/python -m bench.crash [--clients 12] [--kill-at 8] [--after 10]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
"""

import argparse
import contextlib
import http.client
import json
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from random import Random

from bench import harness, scenario
from bench.harness import HOST
from bench.scenario import API, MERCHANTS, WEIGHTS


@dataclass
class Sent:
    """One logical request and what finally answered it."""

    op: str  # authorize, capture, reverse, refund
    key: str
    merchant: int
    authorization: str | None  # the decision's reference, for the follow-ups
    status: int | None = None
    data: dict = field(default_factory=dict)
    attempts: int = 0


class Client:
    def __init__(self, index: int, port: int, fixture, run_id: str, args):
        self.index, self.port, self.fixture, self.args = index, port, fixture, args
        self.rng = Random(f"crash-{index}")
        self.prefix = f"{run_id}-{index}-"
        self.sequence = 0
        self.conn = http.client.HTTPConnection(HOST, port, timeout=args.timeout)
        self.sent: list[Sent] = []
        self.resets = Counter()  # exception or 5xx status -> retries
        self.retried_requests = 0

    def send(self, op: str, merchant: int, path: str, body: dict, authorization=None) -> Sent:
        self.sequence += 1
        record = Sent(op, f"{self.prefix}{self.sequence}", merchant, authorization)
        self.sent.append(record)
        payload = json.dumps(body)
        headers = {
            "Authorization": f"Bearer {self.fixture.keys[merchant]}",
            "Content-Type": "application/json",
            "Idempotency-Key": record.key,
        }
        give_up = time.monotonic() + self.args.retry_for
        while time.monotonic() < give_up:
            record.attempts += 1
            try:
                self.conn.request("POST", f"{API}{path}", body=payload, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self.resets[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            if response.status >= 500:
                self.resets[f"HTTP {response.status}"] += 1
                time.sleep(0.2)
                continue
            record.status = response.status
            with contextlib.suppress(ValueError):
                record.data = json.loads(raw)
            break
        if record.attempts > 1:
            self.retried_requests += 1
        return record

    def run(self, stop: threading.Event) -> None:
        rng, fixture = self.rng, self.fixture
        while not stop.is_set():
            merchant = rng.choices(range(len(MERCHANTS)), WEIGHTS)[0]
            auth = self.send(
                "authorize",
                merchant,
                "/authorizations",
                {
                    "amount": rng.randint(100, 6_000),
                    "currency": "EUR",
                    # A retry sends the same code again: it is recognised by the key it was
                    # redeemed with, not refused as used.
                    "payment_code": scenario.payment_code(rng.choice(fixture.wallets)),
                    "partial_approval_allowed": rng.random() < 0.2,
                    "merchant_reference": f"{self.prefix}{self.sequence + 1}",
                },
            )
            approved = auth.data.get("approved_amount") or 0
            if auth.status != 201 or not approved:
                continue
            reference = auth.data["id"]
            path = f"/authorizations/{reference}"
            draw = rng.random()
            if draw < 0.5:
                body = {"amount": rng.randint(1, approved)} if rng.random() < 0.3 else {}
                capture = self.send("capture", merchant, f"{path}/capture", body, reference)
                captured = capture.data.get("amount") or 0
                if capture.status == 201 and captured and rng.random() < 0.3:
                    body = {"amount": rng.randint(1, captured), "reason": "article rendu"}
                    self.send("refund", merchant, f"{path}/refunds", body, reference)
            elif draw < 0.7:
                self.send("reverse", merchant, f"{path}/reverse", {}, reference)


def check(clients: list[Client], merchant_pks: list[int]) -> list[str]:
    """Compare what the clients were answered with what the database holds."""
    from merchants.models import Capture, Refund, Reversal
    from wallet.models.decisions import Decision, DecisionHold

    problems = []
    sent = [record for client in clients for record in client.sent]
    unanswered = [r for r in sent if r.status is None]
    if unanswered:
        problems.append(f"{len(unanswered)} request(s) never answered, e.g. {unanswered[0].key}")

    def scoped(record: Sent) -> str:
        return f"api:{merchant_pks[record.merchant]}:{record.key}"

    models = {"authorize": Decision, "capture": Capture, "reverse": Reversal, "refund": Refund}
    for op, model in models.items():
        asked = [r for r in sent if r.op == op]
        stored = dict(
            model.objects.filter(idempotency_key__startswith="api:").values_list(
                "idempotency_key", "reference"
            )
        )
        amounts = dict(
            model.objects.values_list(
                "reference", "approved_amount" if op == "authorize" else "amount"
            )
        )
        wanted = {scoped(r) for r in asked}
        extra = set(stored) - wanted
        if extra:
            problems.append(f"{op}: {len(extra)} record(s) no client asked for (doubled)")
        for record in asked:
            if record.status != 201:
                continue  # a refusal (409 already captured, 4xx) records nothing to compare
            reference = stored.get(scoped(record))
            answered = record.data.get("approved_amount" if op == "authorize" else "amount")
            if reference is None:
                problems.append(f"{op} {record.key}: answered 201 but not in the database (lost)")
            elif reference != record.data.get("id") or amounts[reference] != answered:
                problems.append(f"{op} {record.key}: the database differs from the answer")
        print(f"  {op:<10} {len(asked):>6} asked, {len(stored):>6} recorded")

    by_authorization = defaultdict(set)
    for record in sent:
        if record.authorization and record.status == 201:
            by_authorization[record.authorization].add(record.op)
    states = Counter()
    holds = DecisionHold.objects.filter(decision__approved_amount__gt=0).select_related(
        "decision", "hold__resolution"
    )
    seen = defaultdict(list)
    for link in holds:
        seen[link.decision.reference].append(link.hold.hold_state)
    for reference, hold_states in seen.items():
        ops = by_authorization.get(reference, set())
        if "capture" in ops:
            expected, fine = "captured", all(s in ("posted", "voided") for s in hold_states)
            fine = fine and "posted" in hold_states
        elif "reverse" in ops:
            expected, fine = "reversed", all(s == "voided" for s in hold_states)
        else:
            expected, fine = "left held", all(s == "pending" for s in hold_states)
        states[(expected, fine)] += 1
        if not fine:
            problems.append(f"authorization {reference} ({expected}): holds {hold_states}")
    for (expected, fine), count in sorted(states.items()):
        print(f"  approved and {expected:<10} {count:>6} {'as expected' if fine else 'WRONG'}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--clients", type=int, default=12, help="concurrent clients (default: 12)")
    add(
        "--after",
        type=float,
        default=10.0,
        help="seconds of load once the server answers again (default: 10)",
    )
    add("--kill-at", type=float, default=8.0, help="seconds into the load (default: 8)")
    add("--down", type=float, default=2.0, help="seconds before the restart (default: 2)")
    add("--workers", type=int, default=3, help="gunicorn workers (default: 3)")
    add("--wallets", type=int, default=300, help="wallets (default: 300)")
    add("--timeout", type=float, default=30.0, help="seconds a client waits for an answer")
    add("--retry-for", type=float, default=120.0, help="seconds a client keeps retrying")
    harness.add_redis_arguments(parser)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("crash", redis=redis) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    fixture = scenario.build(wallets=args.wallets, seed=1)
    merchant_pks = scenario.merchant_pks()
    print(f"server and worker log: {bench.log_path}")
    port = harness.free_port()

    def start() -> tuple:
        server = bench.start_server(port=port, workers=args.workers)
        worker = bench.start_celery(concurrency=1)
        return server, worker

    server, worker = start()
    run_id = uuid.uuid4().hex[:10]
    clients = [Client(i, port, fixture, run_id, args) for i in range(args.clients)]
    try:
        scenario.wait_ready(bench, server, port, fixture.keys[0])
        began = time.monotonic()
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(args.kill_at)
        before_kill = sum(len(c.sent) for c in clients)
        bench.kill(server)
        bench.kill(worker)
        print(f"SIGKILL gunicorn and the Celery worker at {time.monotonic() - began:.1f} s")
        time.sleep(args.down)
        server, worker = start()
        scenario.wait_ready(bench, server, port, fixture.keys[0])
        print(f"restarted, answering again at {time.monotonic() - began:.1f} s")
        time.sleep(args.after)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        drained = None
        for _ in range(60):
            if (queued := bench.redis.queue_length()) == 0:
                drained = time.monotonic() - began
                break
            time.sleep(0.5)
    finally:
        bench.stop(server)
        bench.stop(worker)

    sent = [record for client in clients for record in client.sent]
    statuses = Counter((r.op, r.status) for r in sent)
    resets = sum((c.resets for c in clients), Counter())
    print()
    print(
        f"{args.clients} clients, {len(sent)} requests in {elapsed:.1f} s "
        f"({before_kill} sent before the kill); {sum(c.retried_requests for c in clients)} "
        f"needed a retry: {dict(resets)}"
    )
    for (op, status), count in sorted(statuses.items(), key=str):
        print(f"  {op:<10} {status} {count:>6}")
    print(
        "celery queue: "
        + (f"empty at {drained:.1f} s" if drained else f"{queued} tasks still queued")
    )
    print("database against the answers:")
    problems = check(clients, merchant_pks)
    if any(k.startswith("HTTP") for k in resets):
        problems.append(f"server errors during the run: {dict(resets)}")
    if not bench.verify_ledger():
        problems.append("the ledger does not verify")
    print()
    for problem in problems[:20]:
        print(f"!!! {problem}")
    print("RESULT: " + (f"FAILED: {len(problems)} violation(s)" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
