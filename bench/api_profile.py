"""Profile: one `POST /api/merchant/v1/authorizations` (a payment by one-time code), or one
capture of an authorization, or one refund of a captured payment, in-process.

Builds the data of bench/http_load.py (bench/scenario.py) in a database of its own, then calls
Django's WSGI application directly, as a server's worker would, with the settings the benchmark
servers run with (DEBUG off, persistent connection, the merchant API's rate limit out of the
way). Each request's time is split: the time spent in the database driver's execute (the
statements and their round trips), in Redis commands, and the rest, the Python of the
request: WSGI, middleware, DRF's request, parsing, authentication, throttling, serializers,
renderer, the engine's Python. `processor` is the processor time this process spent on the
request (the Python, and the drivers' own share): on a busy machine the one figure that does
not count the time spent waiting for a core. Then the same requests run under cProfile and
the functions that cost most are printed, by their own time and by cumulative time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_profile \\
        .venv/bin/python -m bench.api_profile [--requests 500] [--wallets 300] [--reuse] \\
        [--operation authorize|capture|refund] [--layers 500]

`--layers N` then sends N requests through a handler with the libraries' request id and CSP
middleware and DRF's negotiation, and N through the settings' (core's), in turn; `--fold N`, N
requests whose code guard reads its counts in a round trip of its own and N reading them in
the key's rate's round trip (merchant_api/throttles.py), in turn.

The payment codes are created before each batch of timed requests: the beneficiary's app
makes them, not the till's request. A capture's authorization (and a refund's authorization
and capture) are made through the API before each batch too, outside the measured time: only
the operation named is timed and profiled. As bench/http_load.py does, 30 % of the captures
take part of what is held, and half of the refunds give back part of what was captured.
The database named in DATABASE_URL is dropped and created again (kept with --reuse): never
point it at real data.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from random import Random

from bench import harness, scenario
from bench.harness import ms

BATCH = 100


def post_environ(path: str, body: bytes, headers: dict[str, str]) -> dict:
    """The WSGI environ of a JSON POST to `path`, as a server's worker gets it; `headers` as
    WSGI names them (HTTP_...)."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        **headers,
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def environ(key: str, body: bytes, idempotency_key: str, path: str = "/authorizations") -> dict:
    return post_environ(
        f"{scenario.API}{path}",
        body,
        {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_IDEMPOTENCY_KEY": idempotency_key},
    )


class RedisCommands:
    """Redis round trips, by command name: each command is one, and a pipeline one for all its
    commands (the cache, throttles)."""

    def __init__(self):
        import redis

        self.counts: Counter = Counter()
        self.seconds = 0.0
        original = redis.Redis.execute_command

        def counted(client, *args, **options):
            started = time.perf_counter()
            try:
                return original(client, *args, **options)
            finally:
                self.seconds += time.perf_counter() - started
                self.counts[str(args[0])] += 1

        redis.Redis.execute_command = counted
        original_pipeline = redis.client.Pipeline.execute

        def pipelined(pipeline, *args, **options):
            # One round trip for the commands queued: counted once, by their names.
            name = "+".join(str(command[0][0]) for command in pipeline.command_stack)
            started = time.perf_counter()
            try:
                return original_pipeline(pipeline, *args, **options)
            finally:
                self.seconds += time.perf_counter() - started
                self.counts[name] += 1

        redis.client.Pipeline.execute = pipelined


class DatabaseTime:
    """Seconds spent in psycopg sending statements and waiting for their results (Django's
    queries, the raw statements of core/one_statement.py, BEGIN and COMMIT), and how many."""

    def __init__(self):
        import psycopg
        from psycopg._connection_base import BaseConnection

        self.seconds = 0.0
        self.statements = 0
        for owner, name in ((psycopg.Cursor, "execute"), (BaseConnection, "_exec_command")):
            setattr(owner, name, self.timed(getattr(owner, name)))

    def timed(self, original):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.statements += 1

        return wrapper


def requests(fixture, rng: Random, count: int, run_id: str, one_merchant: bool) -> list[dict]:
    """`count` WSGI environs of payments by code, the codes created now."""
    made = []
    for i in range(count):
        if one_merchant:
            merchant = 0
        else:
            merchant = rng.choices(range(len(scenario.MERCHANTS)), scenario.WEIGHTS)[0]
        body = {
            "amount": rng.randint(100, 6_000),
            "currency": "EUR",
            "payment_code": scenario.payment_code(rng.choice(fixture.wallets)),
            "partial_approval_allowed": rng.random() < 0.2,
            "merchant_reference": f"ticket-{i}",
        }
        made.append(environ(fixture.keys[merchant], json.dumps(body).encode(), f"{run_id}-{i}"))
    return made


def operations(
    application, fixture, rng: Random, count: int, run_id: str, one_merchant: bool, operation: str
) -> list[dict]:
    """`count` WSGI environs of `operation`, on payments made now through the API (untimed):
    each an authorization approved (and, for a refund, captured) beforehand."""
    if operation == "authorize":
        return requests(fixture, rng, count, run_id, one_merchant)
    made: list[dict] = []
    rounds = 0
    while len(made) < count:
        rounds += 1  # a round's keys are its own: one a round that made nothing reused clashed
        for environ_ in requests(fixture, rng, count - len(made), f"{run_id}-a{rounds}",
                                 one_merchant):  # fmt: skip
            status, answer = call(application, environ_)
            approved = (answer.get("approved_amount") or 0) if status == 201 else 0
            if not approved:
                continue  # declined (a wallet spent out): no hold to capture
            key, reference = environ_["HTTP_AUTHORIZATION"][7:], answer["id"]
            amount = rng.randint(1, approved) if rng.random() < 0.3 else None
            capture = environ(
                key,
                json.dumps({} if amount is None else {"amount": amount}).encode(),
                f"{environ_['HTTP_IDEMPOTENCY_KEY']}-c",
                f"/authorizations/{reference}/capture",
            )
            if operation == "capture":
                made.append(capture)
                continue
            status, captured = call(application, capture)
            if status != 201:
                continue
            refunded = (
                captured["amount"] if rng.random() < 0.5 else rng.randint(1, captured["amount"])
            )
            made.append(
                environ(
                    key,
                    json.dumps({"amount": refunded, "reason": "returned item"}).encode(),
                    f"{environ_['HTTP_IDEMPOTENCY_KEY']}-r",
                    f"/authorizations/{reference}/refunds",
                )
            )
    return made


def call(application, environ_: dict) -> tuple[int, dict]:
    """The answer's status and its JSON body."""
    status_line = []

    def start_response(status, headers, exc_info=None):
        status_line.append(status)

    body = application(environ_, start_response)
    try:
        content = b"".join(body)
    finally:
        body.close()  # request_finished: what a server does after each answer
    return int(status_line[0].split()[0]), json.loads(content) if content else {}


def timed(
    application, batch: list[dict], database, redis_commands, expected: int = 201
) -> tuple[list, int]:
    """Each request's (whole, database, Redis, processor) seconds, and how many were not
    answered `expected`."""
    measured, refused = [], 0
    for environ_ in batch:
        before = database.seconds, redis_commands.seconds
        started, cpu = time.perf_counter(), time.process_time()
        refused += call(application, environ_)[0] != expected
        measured.append(
            (
                time.perf_counter() - started,
                database.seconds - before[0],
                redis_commands.seconds - before[1],
                time.process_time() - cpu,
            )
        )
    return measured, refused


def measured_batches(
    application, batches, database, redis_commands, expected: int = 201
) -> tuple[list, int, int, Counter]:
    """Each batch of `batches` (lists of environs, made just before it is timed) timed: every
    request's times, how many were not answered `expected`, the statements and the Redis
    commands of them all."""
    measured, refused, statements, commands = [], 0, 0, Counter()
    for batch in batches:
        before = database.statements, redis_commands.counts.copy()
        times, not_expected = timed(application, batch, database, redis_commands, expected)
        statements += database.statements - before[0]
        commands += redis_commands.counts - before[1]
        measured += times
        refused += not_expected
    return measured, refused, statements, commands


def report(
    *, what: str, noun: str, measured: list, statements: int, commands: Counter, limit,
    profiler: cProfile.Profile, profiled: int, top: int,
) -> None:  # fmt: skip
    """Per request (`noun`): statements, Redis round trips, the whole / database / Redis /
    Python / processor times, the rate one after the other against the limit, the profile."""
    count = len(measured)
    whole, in_database, in_redis, cpu = (list(c) for c in zip(*measured, strict=True))
    print(
        f"  per {noun}: {statements / count:.1f} statements (BEGIN and COMMIT included), "
        f"{commands.total() / count:.1f} Redis round trips "
        f"({', '.join(f'{name} {n / count:.1f}' for name, n in commands.most_common())})"
    )
    for label, values in (
        ("whole", whole),
        ("database", in_database),
        ("redis", in_redis),
        ("python", [w - d - r for w, d, r, _cpu in measured]),
        ("processor", cpu),
    ):
        p50, p99, _max = harness.percentiles(values)
        print(f"  {label:<9} mean {ms(statistics.fmean(values))}  p50 {ms(p50)}  p99 {ms(p99)}")
    print(f"  -> {count / sum(whole):.0f} {noun}s/s on one core, one after the other")
    harness.print_against_limit(
        f"{noun}s {what}", rate=count / sum(whole), p50=statistics.median(whole), limit=limit
    )
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(f"\n--- cProfile (processor time) of {profiled} {noun}s, by {order} ---")
        print(out.getvalue())


def parts(rounds: int) -> None:
    """Each cut of the merchant API's Python measured beside what it replaced, alternately in
    this one process (so the machine's drift falls on both): processor time per call, and wall
    time for the Redis round trips."""
    from django.core.cache import cache
    from rest_framework.renderers import JSONRenderer

    from core.renderers import OrjsonRenderer
    from merchant_api import idempotency
    from merchant_api.authorizations import AuthorizationOutput
    from merchant_api.base import represented
    from merchant_api.code_guessing import PaymentCodeGuessing
    from merchants.models import IdempotentResponse, Merchant
    from merchants.selectors import authorization_list

    merchant = Merchant.objects.get(siret=scenario.merchant_siret(0))
    decision = authorization_list(merchant=merchant, livemode=True).order_by("-pk").first()
    if decision is None:
        print("parts: no authorization yet at the first merchant")
        return
    data = represented(AuthorizationOutput, decision)
    guard = PaymentCodeGuessing(merchant)
    windows = guard.windows.keys
    pairs = {
        "answer's serializer": (
            lambda: AuthorizationOutput(decision).data,
            lambda: represented(AuthorizationOutput, decision),
        ),
        "renderer": (lambda: JSONRenderer().render(data), lambda: OrjsonRenderer().render(data)),
        "stored answer's lookup": (
            lambda: IdempotentResponse.objects.filter(merchant=merchant, key="absent").first(),
            lambda: idempotency.replay(merchant=merchant, key="absent", fingerprint=""),
        ),
        "code guard's counts": (
            lambda: [cache.get(key, 0) for key in windows],
            lambda: cache.get_many(windows),
        ),
    }
    print(f"\nparts, {rounds} calls each, before -> after (processor time; wall time):")
    for name, (before, after) in pairs.items():
        spent = {before: [0.0, 0.0], after: [0.0, 0.0]}
        for _ in range(rounds):
            for call_ in (before, after):
                cpu, wall = time.process_time(), time.perf_counter()
                call_()
                spent[call_][0] += time.process_time() - cpu
                spent[call_][1] += time.perf_counter() - wall
        (b_cpu, b_wall), (a_cpu, a_wall) = (
            [value / rounds * 1e6 for value in spent[c]] for c in (before, after)
        )
        print(
            f"  {name:<24} {b_cpu:>7.0f} -> {a_cpu:>5.0f} µs processor; "
            f"{b_wall:>7.0f} -> {a_wall:>5.0f} µs wall"
        )


# The libraries' own middleware and negotiation, which ours replace (BENCHMARKS.md, issue 19 part
# 7): --layers times the request with them beside the request with the settings'.
LIBRARY_MIDDLEWARE = {
    "core.request_id.RequestIdMiddleware": "django_guid.middleware.guid_middleware",
    "core.middleware.ContentSecurityPolicy": "csp.middleware.CSPMiddleware",
}


def layers(fixture, rng: Random, count: int, run_id: str, args) -> None:
    """The whole request through two WSGI handlers of this process, one with the libraries'
    middleware and DRF's negotiation, one with the settings' (core's), called in turn on
    `count` requests each: the processor time the cuts around the view save, with the
    machine's load falling on both alike."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.views import APIView

    ours = WSGIHandler()
    with override_settings(
        MIDDLEWARE=[LIBRARY_MIDDLEWARE.get(path, path) for path in settings.MIDDLEWARE]
    ):
        libraries = WSGIHandler()
    ours_negotiation = APIView.content_negotiation_class

    def side(application, negotiation):
        def call_on(environ_: dict) -> int:
            # A class attribute DRF read from its settings at import: swapped for each call.
            APIView.content_negotiation_class = negotiation
            try:
                return call(application, environ_)[0]
            finally:
                APIView.content_negotiation_class = ours_negotiation

        return call_on

    in_turn(
        "layers",
        {
            "libraries'": side(libraries, DefaultContentNegotiation),
            "settings'": side(ours, ours_negotiation),
        },
        ours, fixture, rng, count, run_id, args,
    )  # fmt: skip


def fold(fixture, rng: Random, count: int, run_id: str, args) -> None:
    """The whole request with the code guard's counts read in their own round trip (as before
    issue 19 part 8) and read in the round trip of the key's rate, in turn on `count`
    requests each."""
    from django.core.handlers.wsgi import WSGIHandler

    from merchant_api.authorizations import AuthorizationsView
    from merchant_api.base import MerchantApi

    application = WSGIHandler()

    def side(own_round_trip: bool):
        def call_on(environ_: dict) -> int:
            if own_round_trip:  # the view asks for no counts: its guard reads them itself
                AuthorizationsView.counts_to_read = MerchantApi.counts_to_read  # type: ignore[method-assign]
            try:
                return call(application, environ_)[0]
            finally:
                if own_round_trip:
                    del AuthorizationsView.counts_to_read

        return call_on

    in_turn(
        "fold",
        {"own MGET": side(True), "with the rate": side(False)},
        application, fixture, rng, count, run_id, args,
    )  # fmt: skip


def in_turn(title, sides, application, fixture, rng, count, run_id, args) -> None:
    """`count` requests through each of `sides` (name: a call of one environ answering its
    status), in turn, and the processor time of each side."""
    spent: dict[str, list[float]] = {name: [] for name in sides}
    refused = 0
    batches = (
        operations(application, fixture, rng, min(BATCH, count - start),
                   f"{run_id}-{title}{start}", args.one_merchant, args.operation)
        for start in range(0, 2 * count, BATCH)
    )  # fmt: skip
    for index, environ_ in enumerate(e for batch in batches for e in batch):
        name = list(sides)[index % 2]
        cpu = time.process_time()
        refused += sides[name](environ_) != 201
        spent[name].append(time.process_time() - cpu)
    print(f"\n{title}: {count} requests each, in turn ({refused} not 201), processor time:")
    for name, times in spent.items():
        print(f"  {name:<14} mean {ms(statistics.mean(times))}  p50 {ms(statistics.median(times))}")
    before, after = (statistics.median(times) for times in spent.values())
    first, second = sides
    print(f"  {second} - {first}: {(after - before) * 1e3:+.3f} ms per request (p50)")


def decision_lines(count: int) -> None:
    """The processor time of operations.receivers.decision_observe on the last decision (its
    counters and its log line at INFO, through settings.LOGGING's handler, its filters and its
    JSON formatter, written to /dev/null), `count` times."""
    import logging

    from operations.receivers import decision_observe
    from wallet.models import Decision

    decision = Decision.objects.filter(livemode=True).order_by("-pk").first()
    if decision is None:
        print("decision lines: no decision yet")
        return
    root = logging.getLogger()
    handler = next(h for h in root.handlers if h.get_name() == "console")
    level = root.level
    with open(os.devnull, "w") as devnull:
        stream = handler.setStream(devnull)
        root.setLevel(logging.INFO)
        try:
            for _ in range(200):  # warm-up
                decision_observe(decision)
            started = time.process_time()
            for _ in range(count):
                decision_observe(decision)
            spent = time.process_time() - started
            root.setLevel(logging.CRITICAL)  # the counters alone
            started = time.process_time()
            for _ in range(count):
                decision_observe(decision)
            counters = time.process_time() - started
        finally:
            root.setLevel(level)
            handler.setStream(stream)
    print(f"\ndecision_observe, {count} times: {spent / count * 1e6:.1f} µs of processor each "
          f"with its line, {counters / count * 1e6:.1f} µs without (the counters)")  # fmt: skip


class Collections:
    """The garbage collector's passes in this process, by generation, and their processor
    time: the gc.callbacks hook Python calls around each."""

    def __init__(self):
        import gc

        self.counts = [0, 0, 0]
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self.observe)

    def observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.counts[info["generation"]] += 1
            self.seconds += time.process_time() - self._started


def http_request(conn, environ_: dict) -> int:
    """`environ_`'s request sent on `conn` (http.client, kept alive); its answer's status. A
    connection the server closed while idle (during an in-process batch) is opened again and
    the request sent again: its idempotency key makes that safe."""
    import http.client

    try:
        return sent(conn, environ_)
    except (http.client.RemoteDisconnected, ConnectionError):
        conn.close()  # the next request() connects again
        return sent(conn, environ_)


def sent(conn, environ_: dict) -> int:
    conn.request(
        environ_["REQUEST_METHOD"],
        environ_["PATH_INFO"],
        body=environ_["wsgi.input"].getvalue(),
        headers={
            "Content-Type": environ_["CONTENT_TYPE"],
            "Authorization": environ_["HTTP_AUTHORIZATION"],
            "Idempotency-Key": environ_["HTTP_IDEMPOTENCY_KEY"],
        },
    )
    response = conn.getresponse()
    response.read()
    return response.status


@dataclass
class Side:
    """What one side of --http spent on its requests."""

    requests: int = 0
    refused: int = 0  # not answered 201
    processor: float = 0.0  # seconds
    user: float = 0.0
    kernel: float = 0.0
    voluntary: int = 0  # context switches
    forced: int = 0
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])  # by generation
    collecting: float = 0.0  # seconds in them

    def per(self, seconds: float) -> str:
        return ms(seconds / self.requests)


def over_http(bench, application, fixture, rng: Random, run_id: str, args, spec: str) -> None:
    """The same requests in this process and through a server (`spec`, NAME:WORKERS) from one
    client in a closed loop on one kept-alive connection, batch about batch: the server's
    processor time per request (its every process and thread, user and kernel mode, context
    switches) beside this process' in-process figure, the machine's drift falling on both.
    The server runs with this process' environment (the same LOG_LEVEL)."""
    import http.client

    from bench.harness import HOST

    name, _, workers = spec.partition(":")
    port = harness.free_port()
    server = bench.start_server(port=port, workers=int(workers or 1), server=name)
    bench.wait_ready(server, port, path="/healthz")
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    collections = Collections()
    ours, theirs = Side(), Side()
    threads: dict[tuple, harness.ThreadTimes] = {}
    client_cpu = 0.0
    recorders: dict[str, Perf] = {}
    try:
        for batch in prepared_batches(application, fixture, rng, 50, f"{run_id}-hw", args):
            for environ_ in batch:  # warm-up: the worker's imports, its connections
                http_request(conn, environ_)
        if args.perf:
            recorders = {
                "in-process": Perf([os.getpid()], f"{args.perf}-in-process.data"),
                "http": Perf([server.pid, worker_pid(server.pid)], f"{args.perf}-server.data"),
            }
        for index, batch in enumerate(
            prepared_batches(application, fixture, rng, 2 * args.requests, f"{run_id}-h", args)
        ):
            if index % 2 == 0:
                counts, collecting = collections.counts.copy(), collections.seconds
                usage = resource.getrusage(resource.RUSAGE_SELF)
                recording(recorders, "in-process", "enable")
                cpu = time.process_time()
                ours.refused += sum(call(application, e)[0] != 201 for e in batch)
                ours.processor += time.process_time() - cpu
                recording(recorders, "in-process", "disable")
                own = resource.getrusage(resource.RUSAGE_SELF)
                ours.user += own.ru_utime - usage.ru_utime
                ours.kernel += own.ru_stime - usage.ru_stime
                ours.voluntary += own.ru_nvcsw - usage.ru_nvcsw
                ours.forced += own.ru_nivcsw - usage.ru_nivcsw
                for generation, count in enumerate(collections.counts):
                    ours.collections[generation] += count - counts[generation]
                ours.collecting += collections.seconds - collecting
                ours.requests += len(batch)
            else:
                before = harness.process_group_threads(server.pid)
                recording(recorders, "http", "enable")
                cpu = time.process_time()
                theirs.refused += sum(http_request(conn, e) != 201 for e in batch)
                client_cpu += time.process_time() - cpu
                recording(recorders, "http", "disable")
                for tid, now in harness.process_group_threads(server.pid).items():
                    role = "master" if now.process == server.pid else "worker"
                    key = (role, now.name + (" (main)" if now.main else ""), tid)
                    spent = now - before[tid] if tid in before else now
                    threads[key] = threads[key] + spent if key in threads else spent
                    theirs.processor += spent.user + spent.system
                theirs.requests += len(batch)
    finally:
        for recorder in recorders.values():
            recorder.close()
        conn.close()
        bench.stop(server)
    gen0, gen1, gen2 = (count / ours.requests for count in ours.collections)
    print(f"\nover HTTP ({spec}, one client, closed loop, one connection) against in-process, "
          f"batch about batch, processor time per request:")  # fmt: skip
    print(f"  in-process      {ours.per(ours.processor)}  ({ours.requests} requests, "
          f"{ours.refused} not 201; collections per request gen0 {gen0:.2f} gen1 {gen1:.3f} "
          f"gen2 {gen2:.4f}, {ours.per(ours.collecting)} in them)")  # fmt: skip
    print(f"    (this process: user {ours.per(ours.user)}, kernel {ours.per(ours.kernel)}, "
          f"switches {ours.voluntary / ours.requests:.2f} voluntary, "
          f"{ours.forced / ours.requests:.2f} forced)")  # fmt: skip
    print(f"  server          {theirs.per(theirs.processor)}  ({theirs.requests} requests, "
          f"{theirs.refused} not 201); the client {theirs.per(client_cpu)}")  # fmt: skip
    difference = theirs.processor / theirs.requests - ours.processor / ours.requests
    print(f"  server - in-process: {difference * 1e3:+.2f} ms")
    print("  the server's threads, per request: user, kernel, voluntary and forced switches")
    by_label: dict[tuple, Side] = {}
    named: Counter = Counter()  # threads of each name
    for (role, label, _tid), spent in threads.items():
        total = by_label.setdefault((role, label), Side(requests=theirs.requests))
        named[role, label] += 1
        total.user += spent.user
        total.kernel += spent.system
        total.voluntary += spent.voluntary
        total.forced += spent.involuntary
    for (role, label), total in sorted(by_label.items(), key=lambda i: -(i[1].user + i[1].kernel)):
        print(f"    {role:<7} {label:<24} x{named[role, label]}  {total.per(total.user):>8} "
              f"{total.per(total.kernel):>8}  {total.voluntary / total.requests:>6.2f} "
              f"{total.forced / total.requests:>6.2f}")  # fmt: skip


def recording(recorders: dict, side: str, word: str) -> None:
    if side in recorders:
        recorders[side].command(word)


def worker_pid(master: int) -> int:
    """The first child of `master`, a server's worker (one worker: the worker)."""
    with open(f"/proc/{master}/task/{master}/children") as children:
        return int(children.read().split()[0])


class Perf:
    """`perf record` of the processor time (cpu-clock samples, no hardware counter needed) of
    `pids` into `path`, counting only between enable() and disable(): one side of the batches
    each. `perf report -i PATH --sort comm,dso` then says how much went to the kernel, to
    Python's interpreter, to granian's Rust, to each thread."""

    def __init__(self, pids: list[int], path: str):
        import subprocess
        import tempfile

        folder = tempfile.mkdtemp(prefix="api-profile-perf-")
        control, ack = f"{folder}/control", f"{folder}/ack"
        os.mkfifo(control)
        os.mkfifo(ack)
        self.process = subprocess.Popen(
            ["perf", "record", "-e", "cpu-clock", "-F", "1999", "-D", "-1", "--control",
             f"fifo:{control},{ack}", "-o", path, "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Read and write ends at once: opening a FIFO so does not wait for perf to open it.
        self.control, self.ack = os.open(control, os.O_RDWR), os.open(ack, os.O_RDWR)

    def command(self, word: str) -> None:
        os.write(self.control, f"{word}\n".encode())
        os.read(self.ack, 16)  # "ack\n" once done

    def close(self) -> None:
        self.process.send_signal(signal.SIGINT)  # perf writes its file on SIGINT
        self.process.wait(60)
        os.close(self.control)
        os.close(self.ack)


def prepared_batches(application, fixture, rng: Random, count: int, run_id: str, args):
    """Batches of `count` requests in all, each made just before it is used."""
    for start in range(0, count, BATCH):
        yield operations(application, fixture, rng, min(BATCH, count - start),
                         f"{run_id}{start}", args.one_merchant, args.operation)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="timed requests (default 500)")
    parser.add_argument("--wallets", type=int, default=300, help="wallets built (default 300)")
    parser.add_argument("--reuse", action="store_true", help="keep an earlier run's database")
    parser.add_argument("--one-merchant", action="store_true", help="every payment at one shop")
    parser.add_argument(
        "--operation",
        choices=("authorize", "capture", "refund"),
        default="authorize",
        help="the request timed and profiled (default: authorize)",
    )
    parser.add_argument("--top", type=int, default=35, help="functions printed (default 35)")
    parser.add_argument(
        "--parts",
        type=int,
        default=0,
        help="then time each cut beside what it replaced, this many calls each (default: 0)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=0,
        help="then time this many requests with the libraries' middleware and negotiation "
        "(django-guid, django-csp, DRF) and as many with the settings', in turn (default: 0)",
    )
    parser.add_argument(
        "--fold",
        type=int,
        default=0,
        help="then time this many requests whose code guard reads its counts in a round trip "
        "of its own and as many reading them with the key's rate, in turn (default: 0)",
    )
    parser.add_argument(
        "--decision-lines",
        type=int,
        default=0,
        help="then time operations.receivers.decision_observe (counters and log line) this "
        "many times (default: 0)",
    )
    parser.add_argument(
        "--http",
        nargs="+",
        default=[],
        metavar="SERVER:WORKERS",
        help="then as many requests through each server (granian:1, gunicorn:1, ...) from one "
        "client in a closed loop, batch about batch with as many in-process: the server's "
        "processor time per request, thread by thread, beside the in-process one",
    )
    parser.add_argument(
        "--perf",
        metavar="PREFIX",
        help="with --http, `perf record` each side while it is measured (this process, the "
        "server's master and first worker), into PREFIX-in-process.data and PREFIX-server.data",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="LOG_LEVEL of this process and of --http's servers (default WARNING; the servers "
        "of bench.http_load log at INFO, the decision's line with each payment)",
    )
    parser.add_argument(
        "--save-profile",
        metavar="PATH",
        help="also write the cProfile statistics there (pstats), to read by caller or callee",
    )
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()

    # What bench.harness.Bench.start_server gives the servers.
    os.environ |= {
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "60",
        "MERCHANT_API_RATE": "100000/second",
        "LOG_LEVEL": args.log_level,
    }
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("api-profile", redis=redis, limit_seconds=args.limit_seconds) as bench:
        bench.setup(recreate=not args.reuse)
        if args.reuse:
            fixture = scenario.reuse(wallets=args.wallets)
        else:
            fixture = scenario.build(wallets=args.wallets, seed=1)
        # The application a server serves (config/wsgi.py: its heap settled after start-up).
        from config.wsgi import application

        rng = Random(1)
        run_id = uuid.uuid4().hex[:12]
        database, redis_commands = DatabaseTime(), RedisCommands()

        def prepared(count: int, name: str) -> list[dict]:
            return operations(application, fixture, rng, count, f"{run_id}-{name}",
                              args.one_merchant, args.operation)  # fmt: skip

        timed(application, prepared(BATCH, "warm"), database, redis_commands)
        measured, refused, statements, commands = measured_batches(
            application,
            (
                prepared(min(BATCH, args.requests - start), f"t{start}")
                for start in range(0, args.requests, BATCH)
            ),
            database,
            redis_commands,
        )
        profiled = prepared(min(args.requests, 300), "p")
        # Processor time, not wall time: waits for the database or for a busy core would bury
        # the Python this profile is for.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        timed(application, profiled, database, redis_commands)
        profile.disable()
        if args.save_profile:
            profile.dump_stats(args.save_profile)
        if args.parts:
            parts(args.parts)
        if args.layers:
            layers(fixture, rng, args.layers, run_id, args)
        if args.fold:
            fold(fixture, rng, args.fold, run_id, args)
        if args.decision_lines:
            decision_lines(args.decision_lines)
        for spec in args.http:
            over_http(bench, application, fixture, rng, run_id, args, spec)
        limit = bench.measure_limit(clients=1)  # one request at a time: the one-client limit

    print()
    path = {"authorize": "", "capture": "/{id}/capture", "refund": "/{id}/refunds"}
    print(f"{len(measured)} POST /authorizations{path[args.operation]}, in-process WSGI, "
          f"{refused} not 201")  # fmt: skip
    report(
        what="in-process", noun="request", measured=measured, statements=statements,
        commands=commands, limit=limit, profiler=profile, profiled=len(profiled), top=args.top,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
