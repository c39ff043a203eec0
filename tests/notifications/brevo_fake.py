"""A local fake of Brevo's API, for the two endpoints our messages use: transactional SMS
(POST /v3/transactionalSMS/sms, our notifications.brevo backend) and transactional email
(POST /v3/smtp/email, django-anymail's Brevo backend). A threaded `http.server` on 127.0.0.1
and a port the system picks, answering as Brevo's API reference shows: 201 with the message's
id, 401 without the right `api-key`, 400 {"code", "message"} for a bad body. It records every
request, and can be told to answer the next ones with an error.

Use the `brevo_fake` fixture: it starts a server, points settings at it and stops it after."""

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

API_KEY = "xkeysib-test-key"


@dataclass
class Recorded:
    path: str
    headers: dict
    body: dict
    # The client's port: requests on one kept-alive connection share it.
    port: int = 0


@dataclass
class BrevoFake:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # (status, body) answered instead of the usual, one per request, while any are left.
    failures: list[tuple[int, dict]] = field(default_factory=list)
    _ids = itertools.count(1511882900176220)

    def sms(self) -> list[dict]:
        return [r.body for r in self.requests if r.path == "/v3/transactionalSMS/sms"]

    def emails(self) -> list[dict]:
        return [r.body for r in self.requests if r.path == "/v3/smtp/email"]

    def answer(self, path: str, headers: dict, body: dict, port: int = 0) -> tuple[int, dict]:
        self.requests.append(Recorded(path, headers, body, port))
        if headers.get("api-key") != API_KEY:
            return 401, {"code": "unauthorized", "message": "Key not found"}
        if self.failures:
            return self.failures.pop(0)
        if path == "/v3/transactionalSMS/sms":
            missing = [key for key in ("sender", "recipient", "content") if not body.get(key)]
            if missing:
                return 400, {"code": "missing_parameter", "message": f"{missing[0]} is missing"}
            if not str(body["recipient"]).isdigit():
                return 400, {"code": "invalid_parameter", "message": "Invalid phone number"}
            parts = -(-len(body["content"]) // (70 if body.get("unicodeEnabled") else 160))
            return 201, {
                "reference": "ab1cde2fgh3i4jklmno",
                "messageId": next(self._ids),
                "smsCount": parts,
                "usedCredits": 0.045 * parts,
                "remainingCredits": 82.85,
            }
        if path == "/v3/smtp/email":
            if not body.get("to") or not body.get("sender"):
                return 400, {"code": "missing_parameter", "message": "to is missing"}
            return 201, {"messageId": f"<{next(self._ids)}.1@smtp-relay.mailin.fr>"}
        return 404, {"code": "not_found", "message": "Not found"}


def serve(fake: BrevoFake) -> ThreadingHTTPServer:
    """Answer Brevo's calls for `fake` on 127.0.0.1, from a thread, until the server returned
    is shut down; sets `fake.url`. Also what bench/notices.py sends its messages to."""

    class Handler(BaseHTTPRequestHandler):
        # Keeps the connection open between requests, as Brevo's servers do.
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, answer = fake.answer(self.path, headers, body, self.client_address[1])
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_port}/v3/"
    return server


@pytest.fixture
def brevo_fake(settings):
    fake = BrevoFake()
    server = serve(fake)
    settings.BREVO_API_URL = fake.url
    settings.BREVO_API_KEY = API_KEY
    settings.SMS_BACKEND = "notifications.brevo.BrevoSMSBackend"
    settings.EMAIL_BACKEND = "anymail.backends.brevo.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "BREVO_API_KEY": API_KEY, "BREVO_API_URL": fake.url}
    yield fake
    server.shutdown()
    server.server_close()
