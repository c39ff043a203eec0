"""A local fake of the Stripe API, for the endpoints our Stripe Issuing code calls.

No mock server on PyPI serves /v1/issuing/*, so this one is ours: a threaded `http.server` on
127.0.0.1 and a random port, answering with the shapes of Stripe's API reference (version
2024-06-20). It honours the Idempotency-Key header as Stripe does (the same key on the same
path answers the first response again and creates nothing), records every request so tests can
check what was sent, and can drop connections to play a network failure.

Use the `stripe_fake` fixture: it starts a server, points settings at it and stops it after."""

import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

API_VERSION = "2024-06-20"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    form: dict  # the body, nested back into dicts and lists as Stripe reads it
    headers: dict


def nest(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding back into objects: "a[b][0][c]=1" -> {"a": {"b": [{"c": "1"}]}}."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part, following in itertools.zip_longest(parts, parts[1:]):
            if following is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    cardholders: dict = field(default_factory=dict)
    cards: dict = field(default_factory=dict)
    topups: dict = field(default_factory=dict)
    transfers: dict = field(default_factory=dict)
    balance_transactions: list = field(default_factory=list)
    issuing_balance: int = 0
    _idempotent: dict = field(default_factory=dict)
    _drops: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what tests use -------------------------------------------------------------------

    def sent(self, method: str, path: str) -> list[Recorded]:
        """The requests received for this method and path (a regular expression, anchored)."""
        return [r for r in self.requests if r.method == method and re.fullmatch(path, r.path)]

    def drop_responses(self, method: str, path: str, times: int) -> None:
        """Process the next `times` matching requests, then close the connection unanswered:
        the client cannot know whether its request was done, as on a real network failure."""
        self._drops[(method, path)] = times

    def add_balance_transaction(
        self, *, type: str, amount: int, source: str | None, created: int, currency: str = "eur"
    ) -> dict:
        txn = {
            "id": _id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created,
            "created": created,
            "currency": currency,
            "description": None,
            "exchange_rate": None,
            "fee": 0,
            "fee_details": [],
            "net": amount,
            "reporting_category": type,
            "source": source,
            "status": "available",
            "type": type,
        }
        with self._lock:
            self.balance_transactions.append(txn)
        return txn

    # --- the API --------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, form: dict) -> tuple[int, dict]:
        routes = [
            ("POST", r"/v1/issuing/cardholders", self._cardholder_create),
            ("POST", r"/v1/issuing/cards", self._card_create),
            ("POST", r"/v1/issuing/cards/(?P<id>[\w]+)", self._card_update),
            ("GET", r"/v1/issuing/cards/(?P<id>[\w]+)", self._card_get),
            ("POST", r"/v1/topups", self._topup_create),
            ("POST", r"/v1/transfers", self._transfer_create),
            ("GET", r"/v1/balance_transactions", self._balance_transactions),
            ("GET", r"/v1/balance", self._balance),
        ]
        for verb, pattern, view in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return view(form=form, query=query, **match.groupdict())
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _cardholder_create(self, *, form, query):
        missing = [name for name in ("name", "type", "billing") if name not in form]
        if missing:
            return 400, _error("invalid_request_error", f"Missing required param: {missing[0]}.")
        cardholder = {
            "id": _id("ich"),
            "object": "issuing.cardholder",
            "billing": {"address": form["billing"]["address"]},
            "company": None,
            "created": int(time.time()),
            "email": form.get("email"),
            "individual": form.get("individual"),
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "name": form["name"],
            "phone_number": form.get("phone_number"),
            "requirements": {"disabled_reason": None, "past_due": []},
            "spending_controls": None,
            "status": form.get("status", "active"),
            "type": form["type"],
        }
        self.cardholders[cardholder["id"]] = cardholder
        return 200, cardholder

    def _card_create(self, *, form, query):
        cardholder = self.cardholders.get(form.get("cardholder", ""))
        if cardholder is None:
            return 400, _error("invalid_request_error", "No such cardholder.", param="cardholder")
        if form.get("type") not in ("virtual", "physical"):
            return 400, _error("invalid_request_error", "Invalid type.", param="type")
        controls = form.get("spending_controls", {})
        limits = [
            {**limit, "amount": int(limit["amount"])}
            for limit in controls.get("spending_limits", [])
        ]
        card = {
            "id": _id("ic"),
            "object": "issuing.card",
            "brand": "Visa",
            "cancellation_reason": None,
            "cardholder": cardholder,
            "created": int(time.time()),
            "currency": form.get("currency"),
            "exp_month": 8,
            "exp_year": 2028,
            "last4": f"{secrets.randbelow(10_000):04d}",
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "replacement_for": None,
            "replaced_by": None,
            "shipping": form.get("shipping"),
            "spending_controls": {
                "allowed_categories": controls.get("allowed_categories"),
                "blocked_categories": controls.get("blocked_categories"),
                "spending_limits": limits,
                "spending_limits_currency": form.get("currency") if limits else None,
            },
            "status": form.get("status", "inactive"),
            "type": form["type"],
            "wallets": None,
        }
        self.cards[card["id"]] = card
        return 200, card

    def _card_update(self, *, form, query, id):
        card = self.cards.get(id)
        if card is None:
            return 404, _error("invalid_request_error", f"No such issuing card: '{id}'")
        if card["status"] == "canceled":
            return 400, _error("invalid_request_error", "A canceled card cannot be updated.")
        if "status" in form:
            card["status"] = form["status"]
        if "cancellation_reason" in form:
            card["cancellation_reason"] = form["cancellation_reason"]
        card["metadata"].update(form.get("metadata", {}))
        return 200, card

    def _card_get(self, *, form, query, id):
        card = self.cards.get(id)
        if card is None:
            return 404, _error("invalid_request_error", f"No such issuing card: '{id}'")
        return 200, card

    def _topup_create(self, *, form, query):
        amount = int(form.get("amount", 0))
        if amount <= 0:
            return 400, _error("invalid_request_error", "Invalid positive integer", param="amount")
        now = int(time.time())
        topup = {
            "id": _id("tu"),
            "object": "topup",
            "amount": amount,
            "balance_transaction": None,
            "created": now,
            "currency": form.get("currency"),
            "description": form.get("description"),
            "destination_balance": form.get("destination_balance", "payments"),
            "expected_availability_date": now,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "source": None,
            "statement_descriptor": form.get("statement_descriptor"),
            "status": "pending",
            "transfer_group": None,
        }
        self.topups[topup["id"]] = topup
        self.issuing_balance += amount
        return 200, topup

    def _transfer_create(self, *, form, query):
        """A transfer to a connected account (Stripe Connect)."""
        amount = form.get("amount", "")
        if not amount.isdigit() or int(amount) <= 0:
            return 400, _error("invalid_request_error", "Invalid positive integer", param="amount")
        if not re.fullmatch(r"acct_\w+", form.get("destination", "")):
            return 400, _error(
                "invalid_request_error", "No such destination account.", param="destination"
            )
        if not form.get("currency"):
            return 400, _error("invalid_request_error", "Missing required param: currency.")
        transfer = {
            "id": _id("tr"),
            "object": "transfer",
            "amount": int(amount),
            "amount_reversed": 0,
            "balance_transaction": _id("txn"),
            "created": int(time.time()),
            "currency": form["currency"],
            "description": form.get("description"),
            "destination": form["destination"],
            "destination_payment": _id("py"),
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "reversals": {"object": "list", "data": [], "has_more": False},
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": form.get("transfer_group"),
        }
        self.transfers[transfer["id"]] = transfer
        return 200, transfer

    def _balance_transactions(self, *, form, query):
        rows = sorted(self.balance_transactions, key=lambda txn: (-txn["created"], txn["id"]))
        if "type" in query:
            rows = [txn for txn in rows if txn["type"] == query["type"]]
        for bound, test in (
            ("created[gte]", lambda txn, v: txn["created"] >= v),
            ("created[lt]", lambda txn, v: txn["created"] < v),
        ):
            if bound in query:
                rows = [txn for txn in rows if test(txn, int(query[bound]))]
        if "starting_after" in query:
            ids = [txn["id"] for txn in rows]
            rows = rows[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        return 200, {
            "object": "list",
            "data": rows[:limit],
            "has_more": len(rows) > limit,
            "url": "/v1/balance_transactions",
        }

    def _balance(self, *, form, query):
        return 200, {
            "object": "balance",
            "available": [{"amount": 0, "currency": "eur", "source_types": {"card": 0}}],
            "pending": [{"amount": 0, "currency": "eur", "source_types": {"card": 0}}],
            "issuing": {"available": [{"amount": self.issuing_balance, "currency": "eur"}]},
            "livemode": False,
        }


def _error(kind: str, message: str, *, param: str | None = None) -> dict:
    return {"error": {"type": kind, "message": message, "param": param}}


def _handler(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep the test output clean
            pass

        def _serve(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            form = nest(parse_qsl(body, keep_blank_values=True))
            with fake._lock:
                fake.requests.append(
                    Recorded(self.command, url.path, query, form, dict(self.headers.items()))
                )
                if not self.headers.get("Authorization", "").startswith("Bearer sk_test_"):
                    status, payload = 401, _error("invalid_request_error", "Invalid API Key.")
                else:
                    key = self.headers.get("Idempotency-Key")
                    remembered = (self.command, url.path, key)
                    if self.command == "POST" and key and remembered in fake._idempotent:
                        status, payload = fake._idempotent[remembered]
                    else:
                        status, payload = fake.handle(self.command, url.path, query, form)
                        if self.command == "POST" and key:
                            fake._idempotent[remembered] = (status, payload)
                drops = fake._drops.get((self.command, url.path), 0)
                if drops:
                    fake._drops[(self.command, url.path)] = drops - 1
            if drops:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", _id("req"))
            self.send_header("Stripe-Version", self.headers.get("Stripe-Version", API_VERSION))
            if key := self.headers.get("Idempotency-Key"):
                self.send_header("Idempotency-Key", key)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

    return Handler


def start() -> tuple[FakeStripe, ThreadingHTTPServer]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server


@pytest.fixture
def stripe_fake(settings):
    """A fresh fake Stripe, with settings pointing the stripe library at it."""
    fake, server = start()
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = fake.url
    yield fake
    server.shutdown()
    server.server_close()
