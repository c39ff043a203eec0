"""`/` is the platform's front door: a page, in French unless the browser asks for English, with
a link to the back office, the beneficiaries' app and both APIs' docs, each of which answers."""

import re
from html import unescape

import pytest

DOORS_IN_FRENCH = {
    "/admin/": "Espace des financeurs",
    "/app/": "Application des bénéficiaires",
    "/api/merchant/v1/docs": "Documentation de l\u2019API marchands",
    "/api/app/v1/docs": "Documentation de l\u2019API de l\u2019application",
}
DOORS_IN_ENGLISH = {
    "/admin/": "Funders' back office",
    "/app/": "Beneficiaries' app",
    "/api/merchant/v1/docs": "Merchant API documentation",
    "/api/app/v1/docs": "App API documentation",
}


def _links(response) -> dict[str, str]:
    found = re.findall(r'<a href="([^"]+)">([^<]+)</a>', response.content.decode())
    return {href: unescape(text) for href, text in found}


def test_the_landing_page_is_in_french_by_default(client):
    response = client.get("/")

    assert response.status_code == 200
    assert '<html lang="fr">' in response.content.decode()
    assert _links(response) == DOORS_IN_FRENCH


def test_the_landing_page_is_in_english_when_the_browser_asks(client):
    response = client.get("/", headers={"accept-language": "en-GB,en;q=0.9"})

    assert response.status_code == 200
    assert '<html lang="en">' in response.content.decode()
    assert _links(response) == DOORS_IN_ENGLISH
    assert "Accept-Language" in response["Vary"]


@pytest.mark.django_db
def test_every_link_of_the_landing_page_opens(client):
    links = _links(client.get("/"))

    assert links
    assert {href: client.get(href, follow=True).status_code for href in links} == dict.fromkeys(
        links, 200
    )
