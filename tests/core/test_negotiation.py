"""core.renderers.JsonFirstNegotiation: the renderer and media type DRF's negotiation picks, or
its refusal, for any Accept header and format, without parsing the usual headers."""

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.renderers import JsonFirstNegotiation, OrjsonRenderer
from merchants.services import api_key_create

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/json;q=0.9, text/html",
    "text/html",
    "text/html, */*",
    "application/*",
    "*/*; q=0.5",
    "image/png",
    "",
    "APPLICATION/JSON",
]
QUERIES = ["", "?format=json", "?format=api", "?format=xml"]
RENDERER_LISTS = [
    [OrjsonRenderer(), BrowsableAPIRenderer()],
    [BrowsableAPIRenderer(), JSONRenderer()],
    [JSONRenderer()],
]


def _negotiated(negotiation, accept, query, renderers, suffix):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/merchant/v1/authorizations{query}", **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except NotAcceptable:
        return "406"
    except Exception as refused:  # DRF's refusal of a format (Http404), compared too
        return type(refused).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("suffix", [None, "json"])
def test_the_same_choice_as_drf(accept, query, suffix):
    for renderers in RENDERER_LISTS:
        ours = _negotiated(JsonFirstNegotiation(), accept, query, renderers, suffix)
        theirs = _negotiated(DefaultContentNegotiation(), accept, query, renderers, suffix)
        assert ours == theirs


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_api_answers_the_usual_accept_headers_without_parsing_them(
    merchant, client, monkeypatch, accept
):
    parsed = []
    monkeypatch.setattr(
        DefaultContentNegotiation, "get_accept_list", lambda self, request: parsed.append(1)
    )
    secret = api_key_create(merchant=merchant, name="t", mode="live")[1]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if accept is not None:
        headers["HTTP_ACCEPT"] = accept
    answer = client.get("/api/merchant/v1/authorizations", **headers)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert parsed == []
