"""The app API refuses what its schema does not allow instead of reading it some other way: a
number is not a name, and an empty page size is not the default one."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_number_is_not_a_name(api):
    response = api.send("/aidants", {"contact": "aidant@example.org", "name": 0})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "name"


@pytest.mark.parametrize("name", ["limit", "cursor"])
def test_an_empty_page_parameter_is_a_400(api, name):
    response = api.read("/history", **{name: ""})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == name
