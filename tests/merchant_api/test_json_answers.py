"""The merchant API's fast JSON path writes what DRF wrote: the same bytes from the renderer
(core/renderers.py), the same content from outputs built once per process
(merchant_api.base.represented), answers and errors alike."""

import datetime
import decimal
import uuid

import pytest
from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from core.renderers import OrjsonRenderer
from merchant_api.authorizations import AuthorizationOutput
from merchant_api.base import represented
from merchant_api.captures import CaptureOutput
from merchants.models import Capture
from merchants.selectors import authorization_list
from tests.merchant_api.test_basket_lines import BASKET, two_funders_wallet  # noqa: F401
from tests.merchant_api.test_basket_lines import pay as pay_basket

PARIS = datetime.timezone(datetime.timedelta(hours=1))

DOCUMENTS = [
    None,
    {},
    [],
    {"id": "auth_x", "amount": 1250, "approved": True, "decline": None, "metadata": {}},
    {"nested": [{"a": [1, 2, {"b": None}]}, (3, 4)], "empty": ""},
    {"message": "Paiement refusé : plafond de l\u2019aide", "emoji": "💶", "nbsp": "a\u00a0:"},
    {"separators": "line\u2028paragraph\u2029end", "controls": '\x00\x1f\t\n"\\/'},
    {"created": datetime.datetime(2026, 11, 22, 9, 15, tzinfo=datetime.UTC)},
    {"created": datetime.datetime(2026, 11, 22, 10, 15, 0, 123456, tzinfo=PARIS)},
    {"naive": datetime.datetime(2026, 11, 22, 10, 15), "day": datetime.date(2026, 1, 2)},
    {"time": datetime.time(9, 30), "duration": datetime.timedelta(hours=1, seconds=3)},
    {"decimal": decimal.Decimal("12.50"), "uuid": uuid.UUID(int=7)},
    {"lazy": gettext_lazy("This API key is not valid."), "detail": ErrorDetail("x", code="y")},
    {"ints": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63)], "huge": 2**70},
    {"floats": [0.1, 1.5, -0.0, 1e16, 1e22, 1e-7, 5e-324, 123456.789]},
    {1: "an int key", 2.5: "a float key", None: "a None key", False: "a bool key"},
]


@pytest.mark.parametrize("data", DOCUMENTS)
def test_the_renderer_writes_drfs_bytes(data):
    assert OrjsonRenderer().render(data) == JSONRenderer().render(data)


@pytest.mark.parametrize(
    ("accepted", "context"),
    [("application/json; indent=4", {}), ("application/json", {"indent": 2}), (None, None)],
)
def test_an_indented_answer_is_drfs_too(accepted, context):
    data = {"a": [1, {"b": "é"}], "c": None}
    expected = JSONRenderer().render(data, accepted, context)
    assert OrjsonRenderer().render(data, accepted, context) == expected


def test_what_drf_cannot_write_fails_as_in_drf():
    for data in ({"lone": "\ud800"}, {"object": object()}):
        with pytest.raises(Exception) as drf:
            JSONRenderer().render(data)
        with pytest.raises(drf.type):
            OrjsonRenderer().render(data)


@pytest.mark.django_db
def test_an_authorization_answer_and_an_error_are_drfs_json(api, payment_code):
    approved = api.send(
        "/authorizations",
        {"amount": 1250, "currency": "EUR", "payment_code": payment_code(), "metadata": {"k": "€"}},
    )
    declined = api.send(
        "/authorizations", {"amount": 20_000, "currency": "EUR", "payment_code": payment_code()}
    )
    error = api.send("/authorizations", {"amount": "12", "currency": "EUR", "payment_code": "1"})

    assert approved.status_code == 201 and approved.json()["status"] == "approved"
    assert declined.status_code == 201 and declined.json()["decline"]["code"]
    assert error.status_code == 400
    assert error.json() == {
        "error": {
            "code": "invalid_amount",
            "message": error.json()["error"]["message"],
            "field": "amount",
        }
    }
    for response in (approved, declined, error):
        assert response["Content-Type"] == "application/json"
        assert response.content == JSONRenderer().render(response.data)
    body = approved.json()
    assert isinstance(body["amount"], int) and isinstance(body["livemode"], bool)
    assert body["metadata"] == {"k": "€"} and body["basket"] is None
    # An aware datetime in the current time zone, as DRF's DateTimeField writes it.
    assert datetime.datetime.fromisoformat(body["created"]).utcoffset() is not None


@pytest.mark.django_db
def test_outputs_built_once_represent_as_a_new_serializer_would(
    api,
    merchant,
    payment_code,
    two_funders_wallet,  # noqa: F811
):
    api.send("/authorizations", {"amount": 1250, "currency": "EUR", "payment_code": payment_code()})
    approved = api.send(
        "/authorizations", {"amount": 900, "currency": "EUR", "payment_code": payment_code()}
    ).json()
    api.send(
        "/authorizations", {"amount": 20_000, "currency": "EUR", "payment_code": payment_code()}
    )
    api.send(
        "/authorizations",
        {
            "amount": 20_000,
            "currency": "EUR",
            "payment_code": payment_code(),
            "partial_approval_allowed": True,
        },
    )
    pay_basket(
        merchant, two_funders_wallet, amount=5000, lines=BASKET, partial_approval_allowed=True
    )
    api.send(f"/authorizations/{approved['id']}/capture", {"amount": 500})

    decisions = list(authorization_list(merchant=merchant, livemode=True))
    assert {"approved", "declined", "partially_approved"} <= {d.status for d in decisions}
    assert any("lines" in (d.trace or {}) for d in decisions)
    for decision in decisions:
        assert represented(AuthorizationOutput, decision) == AuthorizationOutput(decision).data
    with timezone.override("America/Cayenne"):  # the current time zone is read at each call
        decision = decisions[0]
        assert represented(AuthorizationOutput, decision) == AuthorizationOutput(decision).data
    capture = Capture.objects.get()
    assert represented(CaptureOutput, capture) == CaptureOutput(capture).data
