"""merchant_api.base.json_body: a JSON object read by orjson is what DRF's parser reads, and
every body orjson would read otherwise, or cannot read, gets DRF's own answer."""

import pytest
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser as DrfJSONParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.parsers import JSONParser
from merchant_api import base
from merchant_api.base import json_body


def _request(body: bytes, content_type: str = "application/json") -> Request:
    django_request = APIRequestFactory().generic("POST", "/", body, content_type=content_type)
    return Request(django_request, parsers=[JSONParser()])


def _read(reader, body: bytes, content_type: str = "application/json"):
    try:
        return ("data", repr(reader(_request(body, content_type))))
    except APIException as exc:
        return ("error", type(exc).__name__, str(exc.detail))


def _drf(request: Request):
    return request.data


BODIES = [
    b'{"amount": 1250, "currency": "EUR", "payment_code": "1234 567 890"}',
    b'{"a": 1, "a": 2}',
    b'{"a": -0.0, "b": 1E2, "c": 0.1, "d": 18446744073709551615, "e": "\\u00e9\\u0000"}',
    b'{"amount": 123456789012345678901234567890}',
    b'{"amount": -9223372036854775809}',
    b'{"amount": 1e400}',
    b'{"amount": NaN}',
    b'{"code": "\\udc00"}',
    b'{"code": "x\x01y"}',
    b"\xef\xbb\xbf{}",
    b'{"a": 1}x',
    b"[1, 2]",
    b'"text"',
    b"",
    b"{" * 5000,
]


@pytest.mark.parametrize("body", BODIES)
def test_read_as_drf_reads_it(body):
    assert _read(json_body, body) == _read(_drf, body)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json; charset=latin-1"])
def test_other_content_types_are_drfs(content_type):
    body = '{"name": "Caf\u00e9"}'.encode("latin-1")
    assert _read(json_body, body, content_type) == _read(_drf, body, content_type)


def test_a_plain_object_skips_drfs_parser(monkeypatch):
    monkeypatch.setattr(DrfJSONParser, "parse", lambda *args: pytest.fail("parsed by DRF"))
    assert json_body(_request(b'{"amount": 1}')) == {"amount": 1}


def test_a_long_number_goes_to_drf():
    assert base._LONG_NUMBER.search(b'{"amount": 1234567890123456789}')
    assert not base._LONG_NUMBER.search(b'{"amount": 123456789012345678}')
