from tests.beneficiary_app.conftest import error_code


def test_me_shows_the_first_name_and_masked_contacts(api):
    assert api.read("/me").json() == {
        "first_name": "Marie",
        "language": "fr",
        "email": "m•••@example.org",
        "phone": "••••••••78",
        "read_only": False,
        "aidant": None,
    }


def test_the_beneficiary_chooses_english(api, beneficiary):
    response = api.send("/me", {"language": "en"}, method="patch")

    assert response.status_code == 200
    assert response.json()["language"] == "en"
    beneficiary.refresh_from_db()
    assert beneficiary.preferred_language == "en"


def test_an_unknown_language_is_refused(api, beneficiary):
    response = api.send("/me", {"language": "de"}, method="patch")

    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
    assert response.json()["error"]["field"] == "language"
