"""Statements of settlement batches: for the merchant through its API (its own only), for the
operators in the admin; each payment, refund, carried amount and the net, in French amounts."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine

from merchants.payments import payment_authorize, payment_refund
from merchants.settlement import settlement_close, settlement_until
from merchants.statements import money_fr
from tests.factories import make_merchant, make_payment_code, make_staff
from tests.merchant_api.conftest import MerchantClient

DAY = timedelta(days=1)


@pytest.fixture
def api(merchant):
    return MerchantClient(merchant)


@pytest.fixture
def wallet(pocket):
    return pocket.wallet


@pytest.fixture
def batches(merchant, wallet, settings):
    """Day 0: two payments (settled, paid out). Day 1: a refund larger than the day's payment
    (net negative). Day 2: a payment, with day 1's negative net carried."""
    settings.OPERATOR_NAME = "Opérateur Aidwallet"
    day0 = settlement_until() + DAY

    def pay(amount, when, reference=""):
        with time_machine.travel(when, tick=False):
            return payment_authorize(
                merchant=merchant,
                amount=amount,
                currency="EUR",
                payment_code=make_payment_code(wallet),
                capture=True,
                merchant_reference=reference,
            )

    first = pay(4_000, day0 + timedelta(hours=9), "order-1")
    pay(1_050, day0 + timedelta(hours=10), "=HYPERLINK(1)")
    with time_machine.travel(day0 + DAY + timedelta(hours=9), tick=False):
        payment_refund(merchant=merchant, decision=first, amount=2_500, idempotency_key=None)
    pay(500, day0 + DAY + timedelta(hours=11), "order-3")
    pay(3_500, day0 + 2 * DAY + timedelta(hours=9), "order-4")
    return [
        settlement_close(merchant=merchant, currency="EUR", until=day0 + n * DAY) for n in (1, 2, 3)
    ]


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_french_amounts():
    assert money_fr(123_450, "EUR") == "1\u202f234,50\u00a0€"
    assert money_fr(-600, "EUR") == "-6,00\u00a0€"


def test_the_merchant_lists_its_settlements(api, batches):
    response = api.read("/settlements")

    assert response.status_code == 200
    ids = [result["id"] for result in response.json()["results"]]
    assert ids == [batch.reference for batch in reversed(batches)]
    nets = [result["net"] for result in response.json()["results"]]
    assert nets == [1_500, -2_000, 5_050]
    assert response.json()["results"][1]["payout"] is None


def test_a_settlement_shows_its_lines(api, batches):
    body = api.read(f"/settlements/{batches[2].reference}").json()

    assert [(line["type"], line["amount"]) for line in body["lines"]] == [
        ("carried", -2_000),
        ("payment", 3_500),
    ]
    assert body["lines"][0]["carried_from"] == batches[1].reference
    assert body["lines"][1]["merchant_reference"] == "order-4"
    assert body["payout"]["amount"] == 1_500


def test_the_statement_csv_has_each_line_and_the_net(api, batches):
    response = api.read(f"/settlements/{batches[1].reference}/statement.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    table = rows(response.content.decode())
    assert table[0] == ["date", "type", "authorization", "merchant_reference", "amount_cents",
                        "amount", "funder"]  # fmt: skip
    assert [(row[1], row[4], row[5]) for row in table[1:]] == [
        ("refund", "-2500", "-25,00\u00a0€"),
        ("payment", "500", "5,00\u00a0€"),
        ("net", "-2000", "-20,00\u00a0€"),
    ]


def test_a_formula_in_a_merchant_reference_is_not_run_by_a_spreadsheet(api, batches):
    table = rows(api.read(f"/settlements/{batches[0].reference}/statement.csv").content.decode())

    assert "'=HYPERLINK(1)" in [row[3] for row in table]


@pytest.mark.parametrize("suffix", ["", "/statement.csv"])
def test_another_merchants_settlement_is_not_found(batches, suffix):
    other = MerchantClient(make_merchant())

    response = other.read(f"/settlements/{batches[0].reference}{suffix}")

    assert response.status_code == 404
    assert other.read("/settlements").json()["results"] == []


def test_operators_read_the_statement_in_the_admin(admin_client, batches, merchant):
    batch = batches[0]

    page = admin_client.get(f"/admin/merchants/settlementbatch/{batch.pk}/statement/")
    download = admin_client.get(f"/admin/merchants/settlementbatch/{batch.pk}/statement.csv")

    html = page.content.decode()
    assert page.status_code == 200
    for text in (merchant.legal_name, "Opérateur Aidwallet", batch.reference, "50,50\u00a0€"):
        assert text in html
    assert rows(download.content.decode())[-1][1:5] == ["net", batch.reference, "", "5050"]


def test_funder_staff_cannot_read_statements(client, batches):
    client.force_login(make_staff())

    response = client.get(f"/admin/merchants/settlementbatch/{batches[0].pk}/statement/")

    assert response.status_code == 403


@pytest.mark.parametrize("model", ["settlementbatch", "payout", "sepafile"])
def test_the_settlement_admin_pages_open_for_operators(admin_client, batches, model):
    assert admin_client.get(f"/admin/merchants/{model}/").status_code == 200
    if model == "settlementbatch":
        change = admin_client.get(f"/admin/merchants/{model}/{batches[0].pk}/change/")
        assert change.status_code == 200


def test_the_statement_answers_a_client_that_accepts_only_csv(api, batches):
    url = f"/api/merchant/v1/settlements/{batches[1].reference}/statement.csv"

    response = api.get(url, HTTP_ACCEPT="text/csv")
    missing = api.get(
        url.replace(batches[1].reference, "STL-0000000000000000"), HTTP_ACCEPT="text/csv"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert rows(response.content.decode())[0][0] == "date"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
