"""The OpenAPI documents read the same whoever fetches them: not translated to each reader's
Accept-Language (an integrator diffing two copies must see no change)."""

import pytest


@pytest.mark.parametrize("url", ["/api/merchant/v1/schema", "/api/app/v1/schema"])
def test_the_schema_is_the_same_in_every_reader_language(client, db, url):
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr")
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert french.status_code == english.status_code == 200
    assert french.content == english.content
