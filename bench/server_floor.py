"""Benchmark: what a server costs per request around the application, `GET /healthz` (Django's
handler and middleware, a view that touches nothing), in-process and through each server.

The same requests are answered by Django's WSGI handler called in this process, then by each
server named (bench/harness.py's commands: gunicorn sync or gthread, granian), driven from
--clients threads, each keeping its HTTP connection open when the server does. Printed per
request: the server's processor time (its whole process group), this client's, the TCP
connections opened, and the wall time of the run. The difference between a server's processor
time and the in-process figure is what HTTP, the server's accept loop and its WSGI layer cost.

    .venv/bin/python -m bench.server_floor [--requests 3000] [--clients 8] \\
        [--servers gunicorn:3 gunicorn:2x4 granian:2 granian:2x4]

A server is NAME:WORKERS or NAME:WORKERSxTHREADS. Nothing is written to any database; the port
is BENCH_PORT when set.
"""

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time

from bench import harness
from bench.harness import HOST, ROOT, ms

PATH = "/healthz"
ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
}


def in_process(requests: int) -> float:
    """Processor seconds per `GET /healthz` through Django's WSGI handler, in this process."""
    os.environ.update(ENVIRONMENT)
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    application = WSGIHandler()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
    }

    def call() -> None:
        import io

        answer = application(environ | {"wsgi.input": io.BytesIO()}, lambda *args: None)
        b"".join(answer)
        answer.close()

    for _ in range(100):  # warm-up
        call()
    started = time.process_time()
    for _ in range(requests):
        call()
    return (time.process_time() - started) / requests


def drive(port: int, requests: int, clients: int) -> tuple[int, int]:
    """`requests` GETs from `clients` threads; returns (answered 200, connections opened)."""
    counts = {"ok": 0, "connections": 0}
    lock = threading.Lock()
    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def client(count: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        ok = opened = 0
        for _ in range(count):
            if conn.sock is None:
                opened += 1
            try:
                conn.request("GET", PATH)
                response = conn.getresponse()
                response.read()
                ok += response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
        conn.close()
        with lock:
            counts["ok"] += ok
            counts["connections"] += opened

    threads = [threading.Thread(target=client, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["ok"], counts["connections"]


def through(server: str, requests: int, clients: int) -> None:
    name, _, shape = server.partition(":")
    workers, _, threads = (shape or "3").partition("x")
    port = harness.free_port()
    command = harness.server_command(
        name, port=port, workers=int(workers), threads=int(threads or 1)
    )
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=os.environ | ENVIRONMENT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while drive(port, 1, 1)[0] != 1:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{server}: the server did not answer")
            time.sleep(0.5)
        drive(port, 200, clients)  # warm-up: every worker imports and answers
        cpu, client_cpu = harness.process_group_cpu(process.pid), time.process_time()
        started = time.perf_counter()
        ok, connections = drive(port, requests, clients)
        wall = time.perf_counter() - started
        cpu = harness.process_group_cpu(process.pid) - cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        os.killpg(process.pid, 15)
        process.wait(20)
    print(
        f"  {server:<14} {ms(cpu / requests):>9} {ms(client_cpu / requests):>9} "
        f"{connections:>11} {requests / wall:>8.0f} {requests - ok:>7}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="per server (default 3000)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument(
        "--servers",
        nargs="+",
        default=["gunicorn:3", "gunicorn:2x4", "granian:2", "granian:2x4"],
        help="NAME:WORKERS[xTHREADS] each (default: gunicorn:3 gunicorn:2x4 granian:2 granian:2x4)",
    )
    args = parser.parse_args()
    print(f"GET {PATH}, {args.requests} requests, {args.clients} clients, per request:")
    print(f"  {'in-process':<14} {ms(in_process(args.requests)):>9} (Django's handler only)")
    print(f"  {'server':<14} {'server':>9} {'client':>9} {'connections':>11} {'req/s':>8} "
          f"{'errors':>7}")  # fmt: skip
    for server in args.servers:
        through(server, args.requests, args.clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
