"""Security tests' shared parts.

`SecretsInLogs` is a pytest plugin, registered for every run by tests/conftest.py: it writes each
log record of the run to var/test-logs/<run>.log, notes each secret the code hands out (API keys,
app tokens, payment codes, sign-in codes), checks every error answer and admin page as it is
served, and at the end fails the run if a secret or a card number appears in the log or in those
pages. The fixtures below build two tenants of each API for the hostile-input and object-level
authorization tests."""

import importlib
import json
import logging
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.db.models import Sum
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from beneficiary_app.services import aidant_authorize, app_token_create, contact_parse
from ledger.models import Account
from merchants.payments import payment_authorize, payment_capture, payment_refund, payment_reverse
from merchants.services import api_key_create
from merchants.settlement import settlement_close
from merchants.webhooks import webhook_endpoint_create
from tests.api_clients import IdempotentClient
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from wallet.models import Card

# --- what a secret looks like -------------------------------------------------------------

# Full secrets only: the 16-character prefix of an API key and the masked webhook secret are
# shown on purpose and are too short to match.
SECRET_FORMATS = {
    "merchant API key": re.compile(r"sk_(?:live|test)_[A-Za-z0-9_-]{20,}"),
    "app token": re.compile(r"(?<![A-Za-z0-9_])app_[A-Za-z0-9_-]{30,}"),
    "webhook signing secret": re.compile(r"whsec_[A-Za-z0-9_-]{24,}"),
    "CVC": re.compile(r"""\b(?:cvc|cvv|cvc2|cvv2)\b["']?\s*[:=]\s*["']?\d{3,4}\b""", re.I),
}
# 13 to 19 digits, in groups separated by spaces or dashes or not at all.
_DIGIT_RUN = re.compile(r"(?<![\d.,])\d(?:[ -]?\d){12,18}(?![\d])")
# Issuer prefixes and lengths of the card brands a PAN could belong to (Visa, Mastercard, Amex,
# Discover, JCB): a Luhn-valid SIRET (14 digits) or a bank account number is not one of them.
_BRANDS = [
    (re.compile(r"4"), {13, 16, 19}),
    (re.compile(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"), {16}),
    (re.compile(r"3[47]"), {15}),
    (re.compile(r"6(?:011|4[4-9]|5)"), {16, 17, 18, 19}),
    (re.compile(r"35(?:2[89]|[3-8]\d)"), {16, 17, 18, 19}),
]


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """The runs of digits in `text` that could be a card number."""
    found = []
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if luhn_valid(digits) and any(
            prefix.match(digits) and len(digits) in lengths for prefix, lengths in _BRANDS
        ):
            found.append(digits)
    return found


def _digits_pattern(digits: str) -> re.Pattern:
    """`digits` standing alone, with or without the spaces people read them with."""
    spaced = r"[ \u00a0]?".join(map(re.escape, digits))
    return re.compile(rf"(?<!\d){spaced}(?!\d)")


# A long secret is found as a whole token: one pass over a text, however many secrets.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}")


def leaks(text: str, secrets: list["Secret"], long: dict | None = None) -> list[str]:
    """What `text` gives away, one line per kind: secrets of a known format, card numbers, the
    given secrets, and those of `long` (value → Secret, looked up token by token)."""
    found = {}
    for kind, pattern in SECRET_FORMATS.items():
        if match := pattern.search(text):
            found[kind] = f"{kind} {match.group()[:12]}…"
    if pans := card_numbers(text):
        found["card number"] = f"card number {pans[0][:6]}…{pans[0][-4:]}"
    hits = [secret for secret in secrets if _contains(text, secret.value)]
    if long:
        hits += [long[token] for token in _TOKEN.findall(text) if token in long]
    for secret in hits:
        found.setdefault(secret.kind, f"{secret.kind} {secret.value[:4]}…")
    return list(found.values())


def _contains(text: str, value: str) -> bool:
    return bool(_digits_pattern(value).search(text)) if value.isdigit() else value in text


# --- the secrets the code hands out --------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    kind: str
    value: str
    test: str | None  # the test that obtained it


@dataclass
class SecretRegistry:
    secrets: list[Secret] = field(default_factory=list)
    long: dict[str, Secret] = field(default_factory=dict)  # the secrets that are not all digits
    current_test: str | None = None

    def add(self, kind: str, value: str) -> None:
        secret = Secret(kind, value, self.current_test)
        self.secrets.append(secret)
        if not value.isdigit():
            self.long[value] = secret

    def of_test(self, test: str | None) -> list[Secret]:
        return [secret for secret in self.secrets if secret.test == test]


def _returned_secret(registry, kind):
    """A wrapper of a service returning (object, secret) that notes the secret."""

    def wrap(function):
        def noted(*args, **kwargs):
            result = function(*args, **kwargs)
            registry.add(kind, result[1])
            return result

        return noted

    return wrap


def _sign_in_code(registry):
    def wrap(function):
        def noted(*args, **kwargs):
            registry.add("sign-in code", kwargs["digits"])
            return function(*args, **kwargs)

        return noted

    return wrap


# module, function, wrapper factory: each place the code creates a secret it returns once.
SECRET_SOURCES = [
    ("merchants.services", "api_key_create", lambda r: _returned_secret(r, "merchant API key")),
    ("beneficiary_app.services", "app_token_create", lambda r: _returned_secret(r, "app token")),
    ("wallet.payment_codes", "payment_code_create", lambda r: _returned_secret(r, "payment code")),
    ("beneficiary_app.services", "_sign_in_code_send", _sign_in_code),
]


def _replace_everywhere(original, replacement) -> list[tuple[object, str]]:
    """Point every module-level name bound to `original` at `replacement` (modules imported the
    function by name before the plugin started); returns what to restore."""
    replaced = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is original:
                setattr(module, name, replacement)
                replaced.append((module, name))
    return replaced


# --- the plugin ---------------------------------------------------------------------------

KEEP_RUNS = 5
# Third-party loggers whose DEBUG records are many and carry nothing of ours.
QUIET_LOGGERS = ["factory", "faker", "django.db.backends", "hypothesis", "asyncio", "urllib3"]
# What the admin shows once on purpose: its messages (a webhook endpoint's signing secret) and
# the table of the API keys it just created.
_SHOWN_ONCE = re.compile(
    r'<ul class="messagelist">.*?</ul>|<table class="shown-once">.*?</table>', re.S
)


class _RecordWriter(logging.Handler):
    """One line per record: the test, the level, the logger and the message with its traceback
    (line breaks escaped, so that a record is one line)."""

    def __init__(self, path: Path, registry: SecretRegistry):
        super().__init__(level=logging.DEBUG)
        self.stream = path.open("a", encoding="utf-8", errors="backslashreplace")
        self.registry = registry

    def emit(self, record):
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.stack_info:
                text += "\n" + record.stack_info
            line = "\t".join(
                [self.registry.current_test or "-", record.levelname, record.name, text]
            )
            self.stream.write(line.replace("\\", "\\\\").replace("\n", "\\n") + "\n")
        except Exception:
            self.handleError(record)

    def close(self):
        # Left open: a new logging configuration (see SecretsInLogs._attach) closes every
        # handler it replaces, and this one goes on until the end of the run.
        self.stream.flush()

    def finish(self):
        self.stream.close()
        super().close()


@dataclass
class Finding:
    where: str  # the log file or the page
    test: str
    what: str


def scan_log(path: Path, registry: SecretRegistry) -> list[Finding]:
    """Each secret or card number in the log at `path`. A secret of digits only is looked for in
    the records of the test that obtained it (six digits occur by chance in a long log)."""
    by_test = defaultdict(list)
    for secret in registry.secrets:
        if secret.value.isdigit():
            by_test[secret.test].append(secret)
    findings = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            test = line.split("\t", 1)[0]
            for what in leaks(line, by_test.get(test, []), registry.long):
                findings.append(Finding(f"{path}:{number}", test, what))
    return findings


class SecretsInLogs:
    def __init__(self):
        self.registry = SecretRegistry()
        self.findings: list[Finding] = []
        self.restore: list[tuple[object, str, object]] = []
        self.handler = None
        self.levels = {}

    # Every service that hands out a secret is wrapped before any test runs.
    def pytest_configure(self, config):
        for module_name, name, wrapper in SECRET_SOURCES:
            module = importlib.import_module(module_name)
            original = getattr(module, name)
            replacement = wrapper(self.registry)(original)
            for holder, attribute in _replace_everywhere(original, replacement):
                self.restore.append((holder, attribute, original))
        self._original_get_response = BaseHandler.get_response
        plugin = self

        def get_response(handler, request):
            response = plugin._original_get_response(handler, request)
            plugin.check_page(request, response)
            return response

        BaseHandler.get_response = get_response

    def check_page(self, request, response) -> None:
        """An error answer (whatever the URL) or an admin page must give no secret away. The
        admin's messages and its table of new API keys are left out: a secret created in the
        admin is shown there, once."""
        is_admin = request.path.startswith("/admin/")
        if (response.status_code < 400 and not is_admin) or response.streaming:
            return
        text = response.content.decode(response.charset or "utf-8", errors="replace")
        if is_admin:
            text = _SHOWN_ONCE.sub("", text)
        test = self.registry.current_test
        codes = [s for s in self.registry.of_test(test) if s.value.isdigit()]
        for what in leaks(text, codes, self.registry.long):
            where = f"{request.method} {request.path} ({response.status_code})"
            self.findings.append(Finding(where, test or "-", what))

    def pytest_sessionstart(self, session):
        folder = Path(settings.VAR_DIR) / "test-logs"
        folder.mkdir(parents=True, exist_ok=True)
        for old in sorted(folder.glob("*.log"))[: -(KEEP_RUNS - 1) or None]:
            old.unlink(missing_ok=True)
        self.path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        self.handler = _RecordWriter(self.path, self.registry)
        self.levels = {name: logging.getLogger(name).level for name in ["", *QUIET_LOGGERS]}
        self._attach()

    def _attach(self) -> None:
        # Again before each test: importing config.wsgi (schemathesis does) sets Django up
        # again, and its logging configuration replaces the root logger's handlers.
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
            root.setLevel(logging.DEBUG)
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.INFO)

    def pytest_runtest_logstart(self, nodeid):
        self.registry.current_test = nodeid
        self._attach()

    def pytest_runtest_logfinish(self, nodeid):
        self.registry.current_test = None

    def pytest_sessionfinish(self, session):
        if self.handler is None:
            return
        logging.getLogger().removeHandler(self.handler)
        self.handler.finish()
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        for holder, attribute, original in self.restore:
            setattr(holder, attribute, original)
        BaseHandler.get_response = self._original_get_response
        self.findings += scan_log(self.path, self.registry)
        if self.findings:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.findings:
            return
        terminalreporter.section("secrets given away", sep="=", red=True, bold=True)
        for finding in self.findings[:50]:
            terminalreporter.write_line(f"{finding.test}: {finding.what} in {finding.where}")
        terminalreporter.write_line(
            f"{len(self.findings)} finding(s); every log record of the run is in {self.path}."
        )


# --- two tenants of each API --------------------------------------------------------------

MERCHANT_API = "/api/merchant/v1"
APP_API = "/api/app/v1"
SMS_SECRET = "sms-inbound-test-secret"
STRIPE_SECRET = "whsec_test_security"


@dataclass
class Shop:
    """A merchant and one object of each kind it owns through the merchant API."""

    merchant: object
    api: APIClient
    key: object
    held: object  # an authorization still held
    captured: object  # an authorization captured, then partly refunded
    reversed: object  # an authorization reversed
    capture: object
    refund: object
    reversal: object
    endpoint: object
    settlement: object


@dataclass
class Holder:
    """A beneficiary and one object of each kind they reach through the app API."""

    beneficiary: object
    api: APIClient
    pocket: object
    card: object
    payment: object
    aidant: object
    payment_code: str  # a usable one-time code of the wallet, for the merchant API's bodies


def shop_build(merchant, wallet) -> Shop:
    client = IdempotentClient()
    key, secret = api_key_create(merchant=merchant, name="caisse")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def authorize(amount):
        return payment_authorize(
            merchant=merchant, amount=amount, currency="EUR", payment_code=make_payment_code(wallet)
        )

    held, captured, reversed_ = authorize(500), authorize(700), authorize(300)
    capture = payment_capture(merchant=merchant, decision=captured, idempotency_key=None)
    refund = payment_refund(merchant=merchant, decision=captured, amount=100, idempotency_key=None)
    reversal = payment_reverse(merchant=merchant, decision=reversed_, idempotency_key=None)
    endpoint = webhook_endpoint_create(merchant=merchant, url="https://shop.example.org/hooks")
    settlement = settlement_close(
        merchant=merchant, currency="EUR", until=timezone.now() + timedelta(days=1)
    )
    return Shop(
        merchant, client, key, held, captured, reversed_, capture, refund, reversal, endpoint,
        settlement,
    )  # fmt: skip


def holder_build(phone: str) -> Holder:
    beneficiary = BeneficiaryFactory(phone=phone)
    pocket = make_allocation(program=make_program(), beneficiary=beneficiary, amount=20_000).pocket
    card = Card.objects.create(wallet=beneficiary.wallet, kind="virtual", status="active")
    aidant, _ = aidant_authorize(
        wallet=beneficiary.wallet, contact=contact_parse(f"aidant.{beneficiary.pk}@example.org")
    )
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {app_token_create(wallet=beneficiary.wallet)[1]}"
    )
    code = make_payment_code(beneficiary.wallet)
    return Holder(beneficiary, client, pocket, card, None, aidant, code)


@pytest.fixture
def hooks_on(settings):
    settings.SMS_INBOUND_SECRET = SMS_SECRET
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


@pytest.fixture
def alice(db) -> Holder:
    return holder_build("+33611111111")


@pytest.fixture
def bob(db) -> Holder:
    return holder_build("+33622222222")


@pytest.fixture
def shop(alice) -> Shop:
    shop = shop_build(make_merchant(), alice.beneficiary.wallet)
    alice.payment = shop.held
    return shop


@pytest.fixture
def rival(bob) -> Shop:
    rival = shop_build(make_merchant(), bob.beneficiary.wallet)
    bob.payment = rival.held
    return rival


# --- the endpoints of both APIs ------------------------------------------------------------

API_PREFIXES = ("api/merchant/v1/", "api/app/v1/")
DOCUMENTATION = {"merchant_api:schema", "merchant_api:docs", "app_api:schema", "app_api:docs"}


@dataclass(frozen=True)
class Route:
    name: str  # namespace:name
    route: str  # e.g. api/app/v1/pockets/<int:pocket_id>
    methods: tuple[str, ...]

    @property
    def takes_id(self) -> bool:
        return "<" in self.route


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), f"{namespace}{pattern.name}", pattern.callback


def api_routes() -> list[Route]:
    routes = []
    for route, name, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIXES) or name in DOCUMENTATION:
            continue
        view = callback.view_class
        methods = tuple(
            method.upper()
            for method in ("get", "post", "put", "patch", "delete")
            if hasattr(view, method)
        )
        routes.append(Route(name, route, methods))
    return routes


ROUTES = api_routes()


def url_of(route: Route, world) -> str:
    """The route's URL for the world's own objects (alice's and her shop's)."""
    shop, alice = world
    ids = {
        "reference": {
            "merchant_api:authorization": shop.held.reference,
            "merchant_api:capture": shop.held.reference,
            "merchant_api:reverse": shop.held.reference,
            "merchant_api:refund": shop.captured.reference,
            "merchant_api:capture-detail": shop.capture.reference,
            "merchant_api:reversal-detail": shop.reversal.reference,
            "merchant_api:refund-detail": shop.refund.reference,
            "merchant_api:settlement": shop.settlement.reference,
            "merchant_api:settlement-statement": shop.settlement.reference,
            "app_api:payment": alice.payment.reference,
            "app_api:card-freeze": alice.card.reference,
            "app_api:card-unfreeze": alice.card.reference,
            "app_api:card-report-lost": alice.card.reference,
        },
        "key_id": {"merchant_api:api-key-revoke": shop.key.pk},
        "endpoint_id": {"merchant_api:webhook-endpoint-disable": shop.endpoint.pk},
        "aidant_id": {"app_api:aidant": alice.aidant.pk},
        "pocket_id": {
            "app_api:pocket": alice.pocket.pk,
            "app_api:pocket-merchants": alice.pocket.pk,
        },
    }
    path = route.route
    for name, values in ids.items():
        path = re.sub(rf"<\w+:{name}>", str(values.get(route.name, "")), path)
    return "/" + path


def client_for(route: Route, world):
    shop, alice = world
    return shop.api if route.name.startswith("merchant_api:") else alice.api


# A valid body for every (route, method) that reads one; None for those that read none.
VALID_BODIES = {
    ("merchant_api:authorizations", "POST"): {
        "amount": 1000,
        "currency": "EUR",
        "payment_code": "@code",
    },
    ("merchant_api:capture", "POST"): {"amount": 100},
    ("merchant_api:reverse", "POST"): {"amount": 100},
    ("merchant_api:refund", "POST"): {"amount": 100, "reason": "returned"},
    ("merchant_api:api-keys", "POST"): {"name": "caisse 2", "mode": "live"},
    ("merchant_api:api-key-revoke", "POST"): None,
    ("merchant_api:webhook-endpoints", "POST"): {
        "url": "https://shop.example.org/other",
        "enabled_events": [],
    },
    ("merchant_api:webhook-endpoint-disable", "POST"): None,
    ("merchant_api:applications", "POST"): {
        "siret": "44306184100047",
        "legal_name": "Épicerie SAS",
        "trade_name": "Épicerie",
        "mcc": "5411",
        "address": "4 rue du Vieux Temple",
        "postcode": "38000",
        "city": "Grenoble",
        "commune_code": "38185",
        "country": "FR",
        "latitude": "45.19302",
        "longitude": "5.73086",
        "iban": "FR7630006000011234567890189",
    },
    ("app_api:auth-code", "POST"): {"contact": "+33611111111"},
    ("app_api:auth-token", "POST"): {"contact": "+33611111111", "code": "123456"},
    ("app_api:sign-out", "POST"): None,
    ("app_api:sign-out-everywhere", "POST"): None,
    ("app_api:me", "PATCH"): {"language": "en"},
    ("app_api:aidants", "POST"): {"contact": "helper@example.org", "name": "Mme Martin"},
    ("app_api:aidant", "DELETE"): None,
    ("app_api:card-freeze", "POST"): None,
    ("app_api:card-unfreeze", "POST"): None,
    ("app_api:card-report-lost", "POST"): None,
    ("app_api:payment-codes", "POST"): {"max_amount": 1000, "currency": "EUR"},
    ("app_api:notification-preferences", "PUT"): {"choices": {"payment_approved": {"sms": True}}},
    ("app_api:push-subscriptions", "POST"): {
        "endpoint": "https://fcm.googleapis.com/fcm/send/device",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    },
    ("app_api:push-subscriptions", "DELETE"): {
        "endpoint": "https://fcm.googleapis.com/fcm/send/device"
    },
}


def body_for(route, method, world, **changes) -> dict:
    _shop, alice = world
    body = dict(VALID_BODIES[(route.name, method)])
    if body.get("payment_code") == "@code":
        body["payment_code"] = alice.payment_code
    return body | changes


def world_state() -> dict:
    """Rows of every model of ours, and the money in every account: equal before and after a
    refused request when nothing was written and no money moved."""
    counts = {
        model._meta.label: model.objects.count()
        for app in ("wallet", "funders", "merchants")
        for model in apps.get_app_config(app).get_models()
    }
    money = Account.objects.aggregate(balance=Sum("balance"), pending=Sum("pending"))
    return counts | {"money": money}


def error_of(response) -> dict:
    """The API's error body; fails on anything else (an HTML page, a bare 4xx)."""
    assert response["Content-Type"].startswith("application/json"), (
        response.status_code,
        response.content[:300],
    )
    body = json.loads(response.content)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]
