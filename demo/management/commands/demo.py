import errno
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from beneficiary_app.services import contact_parse, sign_in_code_issue
from core.phones import format_phone
from demo.build import demo_build
from notifications.channels import mask_email, mask_phone
from wallet.models.notifications import Notification
from wallet.payment_codes import code_lifetime, payment_code_create


class Command(BaseCommand):
    help = (
        "Run the platform with demo data: migrate, build the demo, start the web server and the "
        "Celery worker (with its scheduler), and print how to log in and pay."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host: str, port: int, **options):
        # Before anything else: building the demo sets new passwords and a new API key, which
        # would lock out whoever is using a demo already running on this port.
        if self._port_in_use(host, port):
            raise CommandError(
                f"Port {port} is already in use (another demo?). Start this one on another "
                f"port: PORT={port + 1} .venv/bin/python manage.py demo"
            )
        call_command("migrate", interactive=False, verbosity=0)
        base = f"http://{host}:{port}"
        # The link in the messages the demo sends is this demo's app, unless told otherwise.
        app_url = os.environ.get("APP_URL") or f"{base}/app/"
        settings.APP_URL = app_url
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        access = demo_build(password=password)

        log_dir = settings.VAR_DIR
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children = [
            self._start(
                [*manage, "runserver", "--noreload", "--insecure", f"{host}:{port}"],
                log_dir / "web.log",
                app_url,
            ),
            self._start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                ],
                log_dir / "worker.log",
                app_url,
            ),
        ]
        try:
            self._wait_until_up(f"{base}/admin/login/", children)
            # Made once the servers are up, so that its few minutes are the reader's.
            _code, digits = payment_code_create(wallet=access.wallet)
            minutes = round(code_lifetime().total_seconds() / 60)
            body = json.dumps({"amount": 1250, "currency": "EUR", "payment_code": digits})
            curl = " ".join(
                [
                    "curl -s -X POST",
                    shlex.quote(f"{base}/api/merchant/v1/authorizations"),
                    "-H",
                    shlex.quote(f"Authorization: Bearer {access.api_key}"),
                    "-H",
                    shlex.quote("Content-Type: application/json"),
                    "-H",
                    shlex.quote(f"Idempotency-Key: {uuid.uuid4()}"),
                    "-d",
                    shlex.quote(body),
                ]
            )
            merchant = access.merchant
            person = access.wallet.beneficiary
            # A sign-in code made here and printed: the person trying the app need not dig it
            # out of a log. It is also "sent" (to the worker's log), as any code.
            phone = format_phone(person.phone)
            _sign_in, sign_in_digits = sign_in_code_issue(contact=contact_parse(phone))
            code_minutes = settings.APP_SIGN_IN_CODE_TTL_SECONDS // 60
            self.stdout.write(
                "\nThe aid wallet platform is running with demo data.\n\n"
                f"  Start page (the back office, the app, the API docs): {base}/\n"
                f"  Admin (funders' back office): {base}/admin/\n"
                f"    platform operator: {access.username}   password: {access.password}\n"
                f"      second factor: {self._second_factor(access, access.username)}\n"
                f"    funder manager: {access.manager_username}   password: {access.password}\n"
                f"      second factor: {self._second_factor(access, access.manager_username)}\n"
                f"  Beneficiaries' app (open it on a phone or a narrow window): {base}/app/\n"
                f"    sign in as {person} with {phone} and the code {sign_in_digits}\n"
                f"    (valid {code_minutes} minutes; a new one asked in the app is printed\n"
                "    here when it is sent, and masked in the logs)\n"
                f"  Merchant: {merchant.trade_name}, {merchant.city} (MCC {merchant.mcc})\n"
                f"    API key (shown once): {access.api_key}\n"
                f"  Merchant API docs: {base}/api/merchant/v1/docs\n"
                f"  Logs: {log_dir / 'web.log'}, {log_dir / 'worker.log'}\n\n"
                f"Authorize a 12.50 EUR payment at this merchant with a one-time payment code of "
                f"{person}, as their app shows it\n(valid {minutes} minutes, for one payment; the "
                f"app makes new ones):\n\n"
                f"{curl}\n\n"
                "Press Ctrl+C to stop.\n"
            )
            self.stdout.flush()
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            seen = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            while all(child.poll() is None for child in children):
                seen = self._show_sign_in_codes(seen)
                time.sleep(0.5)
            raise CommandError("a server process stopped; see the logs above")
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    @staticmethod
    def _second_factor(access, username: str) -> str:
        codes = " ".join(access.recovery_codes[username][:3])
        return (
            f"a recovery code, each good once ({codes}), or the code of an\n"
            f"        authenticator app given the key {access.app_keys[username]}"
        )

    def _show_sign_in_codes(self, seen: int) -> int:
        """Print the sign-in codes sent since message `seen`: the demo's messages go to the
        console, where codes are masked, so the person trying the app reads theirs here."""
        last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or seen
        new = Notification.objects.filter(
            pk__gt=seen, pk__lte=last, kind=Notification.Kind.SIGN_IN_CODE
        )
        for message in new.order_by("pk"):
            recipient = (
                mask_phone(message.recipient)
                if message.channel == Notification.Channel.SMS
                else mask_email(message.recipient)
            )
            self.stdout.write(f"\n[demo] message to {recipient}: {message.body.strip()}\n")
            self.stdout.flush()
        return max(seen, last)

    def _port_in_use(self, host: str, port: int) -> bool:
        """Whether another process listens on host:port. Bound as runserver binds it, with
        SO_REUSEADDR, so that connections of a demo just stopped (TIME_WAIT) do not count."""
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise CommandError(f"Cannot serve on {host}:{port}: {error.strerror}") from error
        return False

    def _start(self, command: list[str], log_path, app_url: str) -> subprocess.Popen:
        log = open(log_path, "ab")  # noqa: SIM115 - the child process keeps it open
        # The demo is development: messages go to the console, codes masked there and printed
        # by the demo itself (outside DEBUG, console backends are refused).
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
            env={**os.environ, "DEBUG": "true", "APP_URL": app_url},
        )

    def _wait_until_up(self, url: str, children: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(child.poll() is not None for child in children):
                raise CommandError("a server process failed to start; see var/*.log")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise CommandError(f"the web server did not answer at {url} within 60 s")
