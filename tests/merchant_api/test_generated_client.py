"""The merchant API as an integrator meets it: a client generated from the schema by a standard
generator (openapi-python-client, offline) runs the whole flow with a sandbox key and the
documented test codes, and every answer is checked by the strict validator against what the
schema documents for its path, method and status (no undocumented status, field or missing
required field). Settlements and their statement need live money (a test key sees none), so that
part runs with a live key on real fixtures."""

import importlib
import inspect
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from django.test import Client as DjangoClient

from core.money import MAX_AMOUNT
from merchants.payments import payment_authorize
from merchants.services import api_key_create
from merchants.settlement import settlement_close, settlement_until
from tests.factories import make_payment_code
from tests.openapi_contract import StrictValidator, generate

pytestmark = pytest.mark.django_db(transaction=False)

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
APPROVE, SMALL, EXPIRED, USED, CAPPED = (
    "0000 000 001", "0000 000 002", "0000 000 090", "0000 000 091", "0000 000 092",
)  # fmt: skip


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    """The merchant schema, and the package the generator made of it, imported."""
    folder = tmp_path_factory.mktemp("generated")
    document = generate("merchant", folder / "merchant.yaml")
    (folder / "config.yaml").write_text("post_hooks: []\npackage_name_override: merchant_client\n")
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", "merchant.yaml", "--config", "config.yaml",
         "--meta", "none", "--output-path", "merchant_client"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # The generator names what it could not read as a warning and skips it: none is allowed.
    assert result.returncode == 0 and "Warning" not in result.stdout, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        importlib.import_module("merchant_client")
        yield document, importlib.import_module("merchant_client.models")
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.startswith("merchant_client")]:
            del sys.modules[name]


class StrictTransport(httpx.BaseTransport):
    """Sends the generated client's requests to the Django app in this process and checks each
    answer against the schema: its status documented for its operation, its body valid with
    every object closed."""

    def __init__(self, document: dict):
        self.validator = StrictValidator(document)
        self.base = document["servers"][0]["url"]
        self.paths = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in document["paths"]
        ]
        self.django = DjangoClient()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in {"host", "content-length", "content-type"}
        }
        answer = self.django.generic(
            request.method,
            request.url.raw_path.decode(),
            data=request.read(),
            content_type=request.headers.get("content-type", ""),
            headers=headers,
        )
        self.check(request, answer)
        return httpx.Response(
            answer.status_code, headers=list(answer.items()), content=answer.content
        )

    def check(self, request: httpx.Request, answer) -> None:
        path = request.url.path.removeprefix(self.base)
        template = next(template for pattern, template in self.paths if pattern.match(path))
        method = request.method.lower()
        responses = self.validator.document["paths"][template][method]["responses"]
        where = f"{request.method} {template} {answer.status_code}"
        assert str(answer.status_code) in responses, f"{where}: undocumented status"
        media = answer["Content-Type"].split(";")[0]
        content = responses[str(answer.status_code)]["content"]
        assert media in content, f"{where}: undocumented media type {media}"
        if media == "application/json":
            schema = content[media]["schema"]
            errors = self.validator.errors(answer.json(), schema)
            assert not errors, f"{where}: {errors}"


@pytest.fixture
def transport(contract):
    return StrictTransport(contract[0])


@pytest.fixture
def connect(contract, transport):
    """A generated client authenticated with `secret` (a new key of `merchant` by default)."""

    def client(merchant=None, *, mode="test", secret=None, language="en"):
        secret = secret or api_key_create(merchant=merchant, name="client", mode=mode)[1]
        return importlib.import_module("merchant_client").AuthenticatedClient(
            base_url=f"http://testserver{transport.base}",
            token=secret,
            raise_on_unexpected_status=True,
            headers={"Accept-Language": language},
            httpx_args={"transport": transport},
        )

    return client


def call(client, name: str, *args, body=None, idempotency_key=None, **params):
    """Calls the generated client's operation `name` ("refunds.refunds_list") the way an
    integrator does: sync_detailed, with a fresh Idempotency-Key on every POST."""
    module = importlib.import_module(f"merchant_client.api.{name}")
    if "idempotency_key" in inspect.signature(module.sync_detailed).parameters:
        params["idempotency_key"] = idempotency_key or str(uuid.uuid4())
    if body is not None:
        params["body"] = body
    return module.sync_detailed(*args, client=client, **params)


def ids(page) -> list[str]:
    return [one.id for one in page.results]


def test_the_whole_sandbox_flow_through_the_generated_client(contract, connect, merchant):
    models = contract[1]
    client = connect(merchant)

    def pay(code, amount, **fields):
        body = models.AuthorizationInputRequest(
            amount=amount, currency="EUR", payment_code=code, **fields
        )
        return call(client, "authorizations.authorizations_create", body=body).parsed

    def operate(name, reference, amount, model=models.AmountInputRequest):
        return call(client, f"authorizations.{name}", reference, body=model(amount=amount)).parsed

    # Authorize, and a partial approval: its decline says why not all.
    approved = pay(APPROVE, 2_000, merchant_reference="order-1")
    partial = pay(SMALL, 1_500, partial_approval_allowed=True)
    assert (approved.status, approved.amount_held, approved.livemode) == ("approved", 2_000, False)
    assert (partial.status, partial.approved_amount) == ("partially_approved", 1_000)
    assert partial.decline.code == "insufficient_funds"

    # Capture part, refund twice, reverse.
    captured = operate("authorizations_capture", approved.id, 1_500)
    refunds = [
        operate("refunds_create", approved.id, amount, models.RefundInputRequest)
        for amount in (500, 400)
    ]
    reversal = operate("authorizations_reverse", partial.id, 300)
    assert (captured.object_, captured.amount, captured.authorization) == (
        "capture", 1_500, approved.id,
    )  # fmt: skip
    assert [refund.amount for refund in refunds] == [500, 400]
    assert (reversal.object_, reversal.amount) == ("reversal", 300)
    state = call(client, "authorizations.authorizations_retrieve", approved.id).parsed
    assert (state.capture_status, state.amount_captured, state.amount_refunded) == (
        "captured", 1_500, 900,
    )  # fmt: skip

    # Lists, with filters and paging.
    listing = "authorizations.authorizations_list"
    page = call(client, listing, limit=1).parsed
    following = call(client, listing, limit=1, cursor=httpx.URL(page.next_).params["cursor"])
    assert ids(page) + ids(following.parsed) == [partial.id, approved.id]
    status = models.AuthorizationsListStatus("partially_approved")
    assert ids(call(client, listing, status=status).parsed) == [partial.id]
    assert ids(call(client, listing, merchant_reference="order-1").parsed) == [approved.id]
    later = approved.created + timedelta(days=1)
    assert ids(call(client, listing, created_gte=later).parsed) == []
    assert ids(call(client, listing, created_lt=later).parsed) == [partial.id, approved.id]
    refund_page = call(client, "refunds.refunds_list", authorization=approved.id, limit=1).parsed
    assert ids(refund_page) == [refunds[1].id] and refund_page.next_
    assert ids(call(client, "captures.captures_list").parsed) == [captured.id]
    reversal_page = call(client, "reversals.reversals_list", authorization=partial.id).parsed
    assert ids(reversal_page) == [reversal.id]
    for name, operation in [
        ("captures", captured),
        ("refunds", refunds[0]),
        ("reversals", reversal),
    ]:
        assert call(client, f"{name}.{name}_retrieve", operation.id).parsed.id == operation.id

    # A test key sees no settlement: money never moves in the sandbox.
    settlements = call(client, "settlements.settlements_list").parsed
    assert (settlements.results, settlements.livemode) == ([], False)


def error_of(response) -> tuple[int, str, str | None]:
    error = response.parsed.error
    return response.status_code, error.code, error.field


def test_each_documented_error_through_the_generated_client(contract, connect, merchant):
    models = contract[1]
    client = connect(merchant)

    def pay(code, amount=1_250, *, currency="EUR", idempotency_key=None):
        body = models.AuthorizationInputRequest(amount=amount, currency=currency, payment_code=code)
        return call(
            client, "authorizations.authorizations_create", body=body,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def operate(name, reference, amount=None, model=models.AmountInputRequest):
        body = model(amount=amount) if amount is not None else None
        return error_of(call(client, f"authorizations.{name}", reference, body=body))

    assert error_of(pay("12")) == (400, "payment_code_malformed", "payment_code")
    assert error_of(pay("9999 999 999")) == (404, "payment_code_invalid", "payment_code")
    assert error_of(pay(EXPIRED)) == (410, "payment_code_expired", "payment_code")
    assert error_of(pay(USED)) == (409, "payment_code_used", "payment_code")
    assert error_of(pay(CAPPED)) == (422, "payment_code_amount_exceeded", "amount")
    assert error_of(pay(APPROVE, 0)) == (400, "invalid_amount", "amount")
    assert error_of(pay(APPROVE, MAX_AMOUNT + 1)) == (400, "amount_too_large", "amount")
    assert error_of(pay(APPROVE, currency="euro")) == (400, "invalid_request", "currency")
    assert error_of(pay(APPROVE, idempotency_key="k" * 256)) == (
        400, "invalid_idempotency_key", "Idempotency-Key",
    )  # fmt: skip
    assert pay(APPROVE, idempotency_key="same").status_code == 201
    assert error_of(pay(APPROVE, 999, idempotency_key="same"))[:2] == (409, "idempotency_conflict")

    declined = pay("0000 000 003").parsed.id
    held = pay(APPROVE, 1_000).parsed.id
    capture, reverse = "authorizations_capture", "authorizations_reverse"
    assert operate(capture, declined)[:2] == (409, "authorization_not_capturable")
    assert operate(reverse, held, 5_000)[:2] == (422, "exceeds_hold_amount")
    assert operate(capture, "auth_unknown")[:2] == (404, "not_found")
    assert call(client, f"authorizations.{capture}", held).status_code == 201
    assert operate(capture, held)[:2] == (409, "authorization_already_captured")
    assert operate("refunds_create", held, 1_001, models.RefundInputRequest)[:2] == (
        422,
        "exceeds_refundable_amount",
    )
    missing = call(client, "authorizations.authorizations_retrieve", "auth_unknown")
    assert error_of(missing)[:2] == (404, "not_found")
    listing = "authorizations.authorizations_list"
    assert error_of(call(client, listing, limit=101)) == (400, "invalid_request", "limit")
    assert error_of(call(client, listing, cursor="x")) == (400, "invalid_request", "cursor")
    live = models.ApiKeyInputRequest(name="live", mode=models.ModeEnum("live"))
    assert error_of(call(client, "api_keys.api_keys_create", body=live))[:2] == (
        403, "live_key_requires_live_key",
    )  # fmt: skip
    stranger = connect(secret="sk_test_not_a_key")
    assert error_of(call(stranger, listing))[:1] == (401,)


def test_messages_come_in_the_request_s_language(contract, connect, merchant):
    body = contract[1].AuthorizationInputRequest(amount=0, currency="EUR", payment_code=APPROVE)
    name = "authorizations.authorizations_create"

    french = call(connect(merchant, language="fr"), name, body=body).parsed.error
    english = call(connect(merchant, language="en"), name, body=body).parsed.error

    assert french.code == english.code == "invalid_amount"
    assert french.message != english.message


@pytest.fixture
def settled(merchant, pocket):
    """A live settlement of two payments, closed as the nightly job closes it."""
    day = settlement_until() + timedelta(days=1)
    for amount, hour in ((4_000, 9), (1_050, 10)):
        with time_machine.travel(day + timedelta(hours=hour), tick=False):
            payment_authorize(
                merchant=merchant, amount=amount, currency="EUR",
                payment_code=make_payment_code(pocket.wallet), capture=True,
                merchant_reference=f"order-{hour}",
            )  # fmt: skip
    return settlement_close(merchant=merchant, currency="EUR", until=day + timedelta(days=1))


def test_settlements_and_their_csv_statement_through_the_generated_client(
    connect, merchant, settled
):
    client = connect(merchant, mode="live")

    page = call(client, "settlements.settlements_list").parsed
    detail = call(client, "settlements.settlements_retrieve", settled.reference).parsed
    statement = call(client, "settlements.settlements_statement_csv", settled.reference)
    missing = call(client, "settlements.settlements_retrieve", "set_unknown")

    assert ids(page) == [settled.reference]
    assert detail.id == settled.reference and len(detail.lines) == 2
    assert statement.status_code == 200
    assert statement.headers["Content-Type"].startswith("text/csv")
    assert "order-9" in statement.content.decode()
    assert error_of(missing)[:2] == (404, "not_found")
