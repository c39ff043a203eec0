"""Benchmark and proof: two app servers, one platform. Nothing a request needs lives on one
server's disk or memory, so a client may talk to either at any moment.

Two gunicorn servers on two ports share the PostgreSQL database, the Redis cache (rate limits)
and a Celery worker, and the client alternates between them:

- a manager signs in to the back office on server A; server B knows the session;
- an allocation file is uploaded through A, its check's result page is read and the file
  confirmed through B, the worker applies it; the program's allocations export is asked for
  through A, built by the worker into the file storage and downloaded through B, its statement
  asked for through B and downloaded through A (each server with a local directory of its own,
  only the storage shared: a directory both mount, or with --storage s3 a bucket of an S3
  server, a fake one (moto's) started by this run, which the servers and the worker reach with
  django-storages and boto3 as they would a real one);
- with --storage s3, the funder's logo, stored by the back office's code in this process, is
  served by A and by B;
- a merchant's API key has a rate limit of RATE requests a minute: its requests, alternating
  between A and B, are refused from the (RATE + 1)th on, by either server, which only a limit
  counted in the shared cache can do (each server saw half);
- then each server answers a fixed number of merchant API listings, timed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_two \\
        .venv/bin/python -m bench.two_servers [--cache-url redis://127.0.0.1:6379/12] \\
        [--storage s3]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if a check fails or the ledger does not verify.
"""

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import timedelta

from bench import harness

# A 1x1 PNG: a funder's logo.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5c1e4d10000000049454e44ae426082"
)
RATE = 20  # merchant API requests a minute per key, in this run
LISTINGS = 200
API = "/api/merchant/v1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_redis_arguments(parser)
    parser.add_argument("--ports", type=int, nargs=2, default=None, help="default: two free")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--storage",
        choices=["directory", "s3"],
        default="directory",
        help="the shared file storage: a directory, or a bucket of a fake S3 server",
    )
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    # Plain http on 127.0.0.1, as the demo serves: no redirect to https, cookies sent over it.
    settings = {
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    s3 = None
    if args.storage == "s3":
        from tests.storage.fake_s3 import BACKEND, FakeS3

        s3 = FakeS3().start()
        args.bucket = s3.bucket()
        settings["FILE_STORAGE_BACKEND"] = BACKEND
        settings["FILE_STORAGE_OPTIONS"] = json.dumps(s3.options(args.bucket))
    else:
        settings["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="aidwallet-shared-storage-")
    try:
        with harness.Bench("two-servers", redis=redis, settings=settings) as bench:
            return run(bench, args, s3)
    finally:
        if s3 is not None:
            s3.stop()


class Check:
    def __init__(self):
        self.failed: list[str] = []

    def __call__(self, condition: bool, label: str) -> None:
        print(f"  {'ok' if condition else 'FAILED'}: {label}")
        if not condition:
            self.failed.append(label)


def csrf(session, url: str) -> str:
    page = session.get(url)
    page.raise_for_status()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError(f"no CSRF token on {url}")
    return found.group(1)


def allocation_file(today) -> bytes:
    start, end = today.isoformat(), (today + timedelta(days=90)).isoformat()
    rows = [
        "reference,first_name,last_name,email,phone,postcode,amount,valid_from,valid_until",
        *(
            f"D-{n:03d},Camille,Martin{n},camille.martin{n}@example.org,,38000,50,{start},{end}"
            for n in range(1, 6)
        ),
    ]
    return ("\n".join(rows) + "\n").encode()


def ready_export(kind: str, timeout: float = 60):
    """The export of `kind` once the worker has built it, None if it did not in time."""
    from funders.models import ProgramExport

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        export = ProgramExport.objects.filter(kind=kind).order_by("-pk").first()
        if export is not None and export.status == ProgramExport.Status.READY:
            return export
        time.sleep(0.5)
    return None


def check_logo(funder, s3, bucket: str, servers, check) -> None:
    import requests
    from django.core.files.base import ContentFile

    from beneficiary_app.web.views import funder_logo_url

    funder.logo.save("logo.png", ContentFile(PNG))
    check(funder.logo.name in s3.keys(bucket), f"the funder's logo stored as {funder.logo.name}")
    for name, server in zip("AB", servers, strict=True):
        served = requests.get(f"{server}{funder_logo_url(funder)}")
        check(
            served.status_code == 200 and served.content == PNG,
            f"the logo served by {name} ({served.status_code})",
        )


def run(bench: harness.Bench, args: argparse.Namespace, s3) -> int:
    bench.setup()
    import requests
    from django.utils import timezone

    from funders.models import AllocationImport
    from merchants.services import api_key_create
    from tests.factories import make_merchant, make_program, make_staff

    program = make_program(name="Aide alimentaire", funded=10**8)
    manager = make_staff(funder=program.funder, username="manager")
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    _key, secret = api_key_create(merchant=make_merchant(), name="till 1")

    ports = args.ports or [harness.free_port(), harness.free_port()]
    rate = {"MERCHANT_API_RATE": f"{RATE}/minute"}
    # Each server a local directory of its own, as on two machines; only the file storage
    # (MEDIA_ROOT, set for every process of the run: a volume both machines mount, or an
    # object store) is shared.
    servers = [
        bench.start_server(
            port=port,
            workers=args.workers,
            environment=rate | {"AIDWALLET_VAR_DIR": tempfile.mkdtemp(prefix=f"aidwallet-{n}-")},
        )
        for n, port in enumerate(ports)
    ]
    bench.start_celery(concurrency=1)
    for server, port in zip(servers, ports, strict=True):
        bench.wait_ready(server, port, path="/healthz")
    a, b = (f"http://{harness.HOST}:{port}" for port in ports)
    check = Check()

    print("the back office, through both servers:")
    staff = requests.Session()
    token = csrf(staff, f"{a}/admin/login/")
    staff.post(
        f"{a}/admin/login/",
        data={"username": "manager", "password": "password", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{a}/admin/login/"},
        allow_redirects=False,
    )
    # The staff's second factor: the manager's authenticator app, a code typed on A.
    verify = f"{a}/admin/second-factor/verify/"
    token = csrf(staff, verify)
    staff.post(
        verify,
        data={"code": f"{TOTP(device.bin_key).token():06d}", "csrfmiddlewaretoken": token},
        headers={"Referer": verify},
        allow_redirects=False,
    )
    check(staff.get(f"{b}/admin/", allow_redirects=False).status_code == 200,
          "signed in on A (password and second factor), known on B")  # fmt: skip

    add = "/admin/funders/allocationimport/add/"
    token = csrf(staff, f"{a}{add}")
    uploaded = staff.post(
        f"{a}{add}",
        data={"program": program.pk, "csrfmiddlewaretoken": token},
        files={"file": ("grants.csv", allocation_file(timezone.localdate()), "text/csv")},
        headers={"Referer": f"{a}{add}"},
        allow_redirects=False,
    )
    check(uploaded.status_code == 302, f"file uploaded through A ({uploaded.status_code})")
    result = uploaded.headers.get("Location", "")
    page = staff.get(f"{b}{result}")
    check(page.status_code == 200 and "Martin5" in page.text, "its check's result read on B")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    found = re.search(r"/admin/funders/allocationimport/\d+/confirm/", page.text)
    confirm = found.group(0) if found else f"{result}confirm/"
    confirmed = staff.post(
        f"{b}{confirm}",
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": f"{b}{result}"},
        allow_redirects=False,
    )
    check(confirmed.status_code == 302, f"confirmed through B ({confirmed.status_code})")
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = AllocationImport.objects.get().status
        if status == AllocationImport.Status.APPLIED:
            break
        time.sleep(0.5)
    check(status == AllocationImport.Status.APPLIED, f"applied by the worker ({status})")
    dashboard = f"/admin/funders/programdashboard/{program.pk}/"
    # The allocations name the five people; the statement has a line for the program's funding
    # and one for each grant, under its heading.
    for kind, ask, serve, expected in (
        ("allocations", a, b, lambda text: "Martin5" in text),
        ("statement", b, a, lambda text: len(text.splitlines()) == 7),
    ):
        names = {a: "A", b: "B"}
        token = csrf(staff, f"{ask}{dashboard}")
        asked = staff.post(
            f"{ask}{dashboard}export/{kind}/csv/",
            data={"csrfmiddlewaretoken": token},
            headers={"Referer": f"{ask}{dashboard}"},
            allow_redirects=False,
        )
        check(asked.status_code == 302, f"the {kind} export asked for through {names[ask]}")
        export = ready_export(kind)
        check(export is not None, f"built by the worker into the file storage ({kind})")
        if export is None:
            continue
        served = staff.get(f"{serve}{dashboard}exports/{export.pk}/")
        check(
            served.status_code == 200 and expected(served.content.decode("utf-8-sig")),
            f"the {kind} file downloaded through {names[serve]} ({served.status_code})",
        )
        if s3 is not None:
            check(
                export.file.name in s3.keys(args.bucket)
                and s3.read(args.bucket, export.file.name) == served.content,
                f"the {kind} file is the bucket's object {export.file.name}",
            )
    if s3 is not None:
        check_logo(program.funder, s3, args.bucket, (a, b), check)

    print(f"the merchant API's rate limit ({RATE}/minute per key), alternating A and B:")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    answers = [
        api.get(f"{(a, b)[n % 2]}{API}/authorizations?limit=1").status_code for n in range(RATE + 4)
    ]
    # The readiness probes above used no key: the key's count starts here.
    check(answers[:RATE] == [200] * RATE, f"the first {RATE} answered")
    check(answers[RATE:] == [429] * 4, f"the next 4 refused by both servers: {answers[RATE:]}")

    for server in servers:
        bench.stop(server)
    print("listings, each server in turn (rate limit lifted):")
    servers = [bench.start_server(port=port, workers=args.workers) for port in ports]
    for server, port in zip(servers, ports, strict=True):
        bench.wait_ready(server, port, path="/healthz")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    latencies = []
    for n in range(LISTINGS):
        t0 = time.perf_counter()
        response = api.get(f"{(a, b)[n % 2]}{API}/authorizations?limit=1")
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            check(False, f"listing {n} answered {response.status_code}")
            break
    p50, p99, worst = harness.percentiles(latencies)
    print(
        f"  {len(latencies)} listings over 2 servers: p50 {harness.ms(p50)}, "
        f"p99 {harness.ms(p99)}, max {harness.ms(worst)}"
    )
    verified = bench.verify_ledger()
    ok = verified and not check.failed
    print("RESULT: ok" if ok else f"RESULT: FAILED ({'; '.join(check.failed)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
