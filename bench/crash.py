"""Proof: SIGKILL the server, a Celery worker and PostgreSQL itself in the middle of a load,
restart them, let the clients retry with their idempotency keys, and check that no payment was
lost or doubled.

Runs on a PostgreSQL server of its own (bench/pgcluster.py: initdb into a temporary folder,
pg_ctl on --pg-port, removed at the end), never a shared one: its postmaster gets SIGKILL.
Builds wallets and merchants as bench/http_load.py does (bench/scenario.py, fewer wallets),
starts gunicorn and one Celery worker (Redis broker), and runs C client threads until --after
seconds past the last restart. Each client pays, then, for an approved payment, captures it
(whole or part, half the time) and refunds part of some captures, or reverses it (a fifth of
the time), or leaves it held. Every request carries its own Idempotency-Key; a request that got
no answer (the connection reset by the kill, or refused while the server is down) or a 503 is
sent again, same body and same key, until it gets one (after the 503's Retry-After).

The crashes (--crash): `app`, at --kill-at seconds the gunicorn master and its workers and the
Celery worker (and its pool) get SIGKILL and are started again --down seconds later; `postgres`,
at --kill-at seconds (after the first crash's recovery, with `both`) the postmaster gets SIGKILL
and is started again --down seconds later, replaying its write-ahead log. While PostgreSQL is
down the server must answer every request 503 with Retry-After and the code
service_unavailable, never another 5xx, and /readyz must answer 503 naming the database.

Then, against the database: each authorization key has exactly one decision, the one its answer
named, with the amount approved the answer gave; each capture, reversal and refund key has
exactly one record with the answered amount, and there is no record the clients did not ask
for; the holds of every approved payment are all posted or voided after a capture, all voided
after a reversal, all still pending when the client left it; the Celery queue drains after the
restart; and `manage.py ledger verify` passes. Exit status 1 on any violation.

    .venv/bin/python -m bench.crash [--crash both] [--pg-port 5440] [--clients 12] \\
        [--kill-at 8] [--after 10]

PostgreSQL's server programs must be installed (Debian: postgresql; PG_BIN names their folder
if they are elsewhere than /usr/lib/postgresql/<version>/bin).
"""

import argparse
import contextlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from random import Random

from bench import harness, pgcluster, scenario
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
    def __init__(self, index: int, port: int, fixture, run_id: str, args, wallets, spare_wallet):
        self.index, self.port, self.fixture, self.args = index, port, fixture, args
        self.wallets, self.spare_wallet = wallets, spare_wallet
        self.spare: str | None = None  # a code made earlier, for while PostgreSQL is down
        self.rng = Random(f"crash-{index}")
        self.prefix = f"{run_id}-{index}-"
        self.sequence = 0
        self.conn = http.client.HTTPConnection(HOST, port, timeout=args.timeout)
        self.sent: list[Sent] = []
        self.resets = Counter()  # exception or 5xx status -> retries
        self.server_errors = Counter()  # a 5xx other than the database's 503 -> count
        self.answered_at: list[float] = []  # when each request got its final answer
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
                time.sleep(self._retry_after(response, raw))
                continue
            record.status = response.status
            self.answered_at.append(time.monotonic())
            with contextlib.suppress(ValueError):
                record.data = json.loads(raw)
            break
        if record.attempts > 1:
            self.retried_requests += 1
        return record

    def _retry_after(self, response: http.client.HTTPResponse, raw: bytes) -> float:
        """The seconds a 503 asks to wait. Any other 5xx, or a 503 that is not the database's
        service_unavailable with a Retry-After, is kept to be reported: a crash must not make
        the server answer a bug's 500."""
        code = None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = json.loads(raw)["error"]["code"]
        retry_after = response.getheader("Retry-After", "")
        if response.status != 503 or code != "service_unavailable" or not retry_after.isdigit():
            self.server_errors[f"{response.status} {code} Retry-After={retry_after!r}"] += 1
            return 0.2
        return float(retry_after)

    def payment_code(self, wallet: int) -> str:
        """A fresh code, as the beneficiary's app shows it; written in this process. While
        PostgreSQL is down no code can be made here, and the client pays once with the code it
        made earlier on a wallet of its own (the app would show one made before the outage):
        without it a client would wait in this loop, not at the server, and the outage's 503s
        would go unasked whenever every client happened to be about to pay."""
        from django.db import DatabaseError, connection

        while True:
            try:
                code = scenario.payment_code(wallet)
                if self.spare is None:
                    self.spare = scenario.payment_code(self.spare_wallet)
                return code
            except DatabaseError:
                connection.close()  # a connection to the killed server is useless
                if self.spare is not None:
                    code, self.spare = self.spare, None
                    return code
                time.sleep(0.2)

    def run(self, stop: threading.Event) -> None:
        rng = self.rng
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
                    "payment_code": self.payment_code(rng.choice(self.wallets)),
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
    add(
        "--crash",
        choices=("app", "postgres", "both"),
        default="both",
        help="what gets SIGKILL: gunicorn and the Celery worker, PostgreSQL's postmaster, or "
        "the first then the second (default: both)",
    )
    add("--clients", type=int, default=12, help="concurrent clients (default: 12)")
    add(
        "--after",
        type=float,
        default=10.0,
        help="seconds of load once the server answers again (default: 10)",
    )
    add(
        "--kill-at",
        type=float,
        default=8.0,
        help="seconds into the load, or after the previous crash's recovery (default: 8)",
    )
    add("--down", type=float, default=2.0, help="seconds before the restart (default: 2)")
    add("--workers", type=int, default=3, help="gunicorn workers (default: 3)")
    add("--wallets", type=int, default=300, help="wallets (default: 300)")
    add("--timeout", type=float, default=30.0, help="seconds a client waits for an answer")
    add("--retry-for", type=float, default=120.0, help="seconds a client keeps retrying")
    add(
        "--pg-port",
        type=int,
        default=0,
        help="the port of the run's own PostgreSQL server (default: one the system gives)",
    )
    harness.add_redis_arguments(parser)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with pgcluster.Cluster(args.pg_port or _free_port()) as cluster:
        cluster.init()
        cluster.start()
        print(f"PostgreSQL of the run: {cluster.root}, port {cluster.port}")
        os.environ["DATABASE_URL"] = cluster.url("aidwallet_bench_crash")
        with harness.Bench("crash", redis=redis) as bench:
            return run(bench, cluster, args)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _readyz(port: int) -> tuple[int, str]:
    """/readyz's status and what it says of the database; (0, "") when no answer came."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)["checks"]["database"]["status"]
    except (ValueError, KeyError, TypeError):
        return response.status, ""


@dataclass
class Outage:
    """What one PostgreSQL crash measured."""

    killed_at: float  # seconds into the load
    up_at: float = 0.0  # accepting connections again
    restart: float = 0.0  # seconds `pg_ctl start` took: the write-ahead log's replay
    readyz_down: list[tuple[int, str]] = field(default_factory=list)  # status, database check
    readyz_up: tuple[int, str] = (0, "")
    recovered_at: float | None = None  # the first final answer after up_at


def crash_postgres(cluster, port: int, began: float, args) -> Outage:
    cluster.kill()
    outage = Outage(killed_at=time.monotonic() - began)
    print(f"SIGKILL the PostgreSQL postmaster at {outage.killed_at:.1f} s")
    # The load balancer's probe, asked through the outage.
    restart_at = time.monotonic() + args.down
    while time.monotonic() < restart_at:
        outage.readyz_down.append(_readyz(port))
        time.sleep(0.25)
    outage.restart = cluster.start()
    outage.up_at = time.monotonic() - began
    print(f"PostgreSQL restarted, accepting connections at {outage.up_at:.1f} s")
    return outage


def run(bench: harness.Bench, cluster: pgcluster.Cluster, args: argparse.Namespace) -> int:
    bench.setup()
    from django.db import connection

    # One wallet more per client, for the code it keeps for the outage (Client.payment_code).
    fixture = scenario.build(wallets=args.wallets + args.clients, seed=1)
    wallets, spares = fixture.wallets[: args.wallets], fixture.wallets[args.wallets :]
    merchant_pks = scenario.merchant_pks()
    print(f"server and worker log: {bench.log_path}")
    port = harness.free_port()

    def start() -> tuple:
        server = bench.start_server(port=port, workers=args.workers)
        worker = bench.start_celery(concurrency=1)
        return server, worker

    server, worker = start()
    run_id = uuid.uuid4().hex[:10]
    clients = [
        Client(i, port, fixture, run_id, args, wallets, spares[i]) for i in range(args.clients)
    ]
    outage = None
    try:
        scenario.wait_ready(bench, server, port, fixture.keys[0])
        began = time.monotonic()
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(args.kill_at)
        before_kill = sum(len(c.sent) for c in clients)
        if args.crash in ("app", "both"):
            bench.kill(server)
            bench.kill(worker)
            print(f"SIGKILL gunicorn and the Celery worker at {time.monotonic() - began:.1f} s")
            time.sleep(args.down)
            server, worker = start()
            scenario.wait_ready(bench, server, port, fixture.keys[0])
            print(f"restarted, answering again at {time.monotonic() - began:.1f} s")
        if args.crash == "both":
            time.sleep(args.kill_at)
        if args.crash in ("postgres", "both"):
            outage = crash_postgres(cluster, port, began, args)
            outage.readyz_up = _readyz(port)
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

    problems = []
    sent = [record for client in clients for record in client.sent]
    statuses = Counter((r.op, r.status) for r in sent)
    resets = sum((c.resets for c in clients), Counter())
    server_errors = sum((c.server_errors for c in clients), Counter())
    print()
    print(
        f"{args.clients} clients, {len(sent)} requests in {elapsed:.1f} s "
        f"({before_kill} sent before the first kill); {sum(c.retried_requests for c in clients)} "
        f"needed a retry: {dict(resets)}"
    )
    for (op, status), count in sorted(statuses.items(), key=str):
        print(f"  {op:<10} {status} {count:>6}")
    if outage is not None:
        answers = sorted(t - began for c in clients for t in c.answered_at)
        outage.recovered_at = next((t for t in answers if t >= outage.up_at), None)
        problems += report_outage(outage)
    print(
        "celery queue: "
        + (f"empty at {drained:.1f} s" if drained else f"{queued} tasks still queued")
    )
    print("database against the answers:")
    # This process's connection went to the server before its crash.
    connection.close()
    problems += check(clients, merchant_pks)
    if server_errors:
        problems.append(f"server errors other than the database's 503: {dict(server_errors)}")
    if drained is None:
        problems.append(f"the Celery queue did not drain: {queued} tasks")
    if not bench.verify_ledger():
        problems.append("the ledger does not verify")
    print()
    for problem in problems[:20]:
        print(f"!!! {problem}")
    print("RESULT: " + (f"FAILED: {len(problems)} violation(s)" if problems else "ok"))
    return 1 if problems else 0


def report_outage(outage: Outage) -> list[str]:
    """The PostgreSQL crash's figures, and what the probe answered while it lasted."""
    problems = []
    print(
        f"PostgreSQL down {outage.up_at - outage.killed_at:.1f} s (SIGKILL at "
        f"{outage.killed_at:.1f} s, restart with recovery {outage.restart:.1f} s)"
    )
    if outage.recovered_at is None:
        problems.append("no request was answered after PostgreSQL's restart")
    else:
        print(
            f"recovered: first answer {outage.recovered_at - outage.up_at:.1f} s after "
            f"PostgreSQL accepted connections, {outage.recovered_at - outage.killed_at:.1f} s "
            "after the kill"
        )
    answers = Counter(outage.readyz_down)
    print(
        "/readyz while down: "
        + ", ".join(
            f"{status} database {database} x{n}" for (status, database), n in answers.items()
        )
    )
    if not answers or set(answers) != {(503, "fail")}:
        problems.append(f"/readyz while PostgreSQL was down answered {dict(answers)}")
    status, database = outage.readyz_up
    print(f"/readyz once restarted: {status}, database {database}")
    if database != "ok":
        problems.append(f"/readyz says the database is {database} once PostgreSQL restarted")
    return problems


if __name__ == "__main__":
    sys.exit(main())
