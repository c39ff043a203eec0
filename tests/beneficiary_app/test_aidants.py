import pytest

from beneficiary_app.services import MAX_AIDANTS, ContactChannel
from tests.beneficiary_app.conftest import AppClient, error_code, last_code
from tests.factories import BeneficiaryFactory
from wallet.models.access import Aidant, AppToken, SignInCode

SOCIAL_WORKER = "c.martin@ccas-grenoble.fr"


@pytest.fixture
def aidant(api, beneficiary):
    response = api.send("/aidants", {"contact": "C.Martin@ccas-grenoble.fr", "name": "Mme Martin"})
    assert response.status_code == 201, response.content
    return Aidant.objects.get(pk=response.json()["id"])


@pytest.fixture
def aidant_api(aidant, beneficiary):
    return AppClient(beneficiary.wallet, aidant=aidant)


def sign_in_as(contact: str) -> dict:
    client = AppClient()
    assert client.send("/auth/code", {"contact": contact}).status_code == 202
    response = client.send("/auth/token", {"contact": contact, "code": last_code(contact)})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_beneficiary_authorises_an_aidant(api, aidant):
    assert (aidant.contact, aidant.channel, aidant.name) == (
        SOCIAL_WORKER,
        ContactChannel.EMAIL,
        "Mme Martin",
    )
    [listed] = api.read("/aidants").json()["data"]
    assert listed["id"] == aidant.pk
    assert listed["contact"] == "c•••@ccas-grenoble.fr"


def test_authorising_the_same_contact_again_returns_the_first(api, aidant):
    response = api.send("/aidants", {"contact": SOCIAL_WORKER})

    assert response.status_code == 200
    assert response.json()["id"] == aidant.pk
    assert Aidant.objects.count() == 1


def test_ones_own_contact_is_not_an_aidant(api, beneficiary):
    response = api.send("/aidants", {"contact": "06 12 34 56 78"})

    assert response.status_code == 400
    assert error_code(response) == "own_contact"


def test_at_most_five_aidants(api):
    for n in range(MAX_AIDANTS):
        assert api.send("/aidants", {"contact": f"aidant{n}@example.org"}).status_code == 201

    response = api.send("/aidants", {"contact": "one-more@example.org"})

    assert response.status_code == 409
    assert error_code(response) == "too_many_aidants"


def test_an_aidant_signs_in_with_a_code_and_gets_a_read_only_token(aidant, food_pocket):
    signed_in = sign_in_as(SOCIAL_WORKER)

    assert signed_in["read_only"] is True
    assert signed_in["wallet_holder"] == "Marie"
    client = AppClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in['token']}")
    [pocket] = client.read("/pockets").json()["data"]
    assert pocket["id"] == food_pocket.pk
    me = client.read("/me").json()
    assert me["read_only"] is True
    assert me["aidant"] == {"name": "Mme Martin", "contact": "c•••@ccas-grenoble.fr"}


def test_an_aidant_of_two_people_gets_a_token_for_each(api, aidant, beneficiary):
    other = BeneficiaryFactory(first_name="Paul")
    AppClient(other.wallet).send("/aidants", {"contact": SOCIAL_WORKER})

    signed_in = sign_in_as(SOCIAL_WORKER)

    holders = [signed_in["wallet_holder"]] + [
        w["wallet_holder"] for w in signed_in["other_wallets"]
    ]
    assert holders == ["Marie", "Paul"]
    wallets = {t.wallet_id for t in AppToken.objects.filter(aidant__contact=SOCIAL_WORKER)}
    assert wallets == {beneficiary.wallet.pk, other.wallet.pk}


def test_a_beneficiary_who_is_also_an_aidant_gets_their_own_wallet_first(other_beneficiary):
    helped = BeneficiaryFactory(first_name="Jeanne")
    AppClient(helped.wallet).send("/aidants", {"contact": other_beneficiary.email})

    signed_in = sign_in_as(other_beneficiary.email)

    assert (signed_in["wallet_holder"], signed_in["read_only"]) == ("Paul", False)
    [helping] = signed_in["other_wallets"]
    assert (helping["wallet_holder"], helping["read_only"]) == ("Jeanne", True)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/me", {"language": "en"}),
        ("post", "/payment-codes", {}),
        ("post", "/aidants", {"contact": "someone@example.org"}),
        ("post", "/cards/{card}/freeze", None),
        ("post", "/cards/{card}/report-lost", None),
        ("delete", "/aidants/{aidant}", None),
    ],
)
def test_an_aidant_cannot_change_anything(aidant_api, aidant, card, method, path, body):
    path = path.format(card=card.reference, aidant=aidant.pk)

    response = aidant_api.send(path, body, method=method)

    assert response.status_code == 403
    assert error_code(response) == "read_only"
    card.refresh_from_db()
    assert card.status == "active"


def test_an_aidant_can_sign_out(aidant_api):
    assert aidant_api.send("/auth/sign-out").status_code == 204
    assert aidant_api.read("/me").status_code == 401


def test_an_aidant_signing_out_everywhere_keeps_the_holder_signed_in(api, aidant_api, aidant):
    assert aidant_api.send("/auth/sign-out-everywhere").status_code == 204

    assert aidant_api.read("/me").status_code == 401
    assert api.read("/me").status_code == 200


def test_the_holder_signing_out_everywhere_signs_aidants_out_too(api, aidant_api):
    assert api.send("/auth/sign-out-everywhere").status_code == 204

    assert aidant_api.read("/me").status_code == 401


def test_withdrawing_an_aidant_stops_their_token_and_sign_in(api, aidant, aidant_api):
    assert api.send(f"/aidants/{aidant.pk}", method="delete").status_code == 204

    assert aidant_api.read("/pockets").status_code == 401
    assert api.read("/aidants").json()["data"] == []
    assert AppToken.objects.filter(aidant=aidant, revoked_at__isnull=True).count() == 0
    AppClient().send("/auth/code", {"contact": SOCIAL_WORKER})
    assert not SignInCode.objects.filter(contact=SOCIAL_WORKER).exists()


def test_another_wallets_aidant_answers_404(aidant, other_beneficiary):
    response = AppClient(other_beneficiary.wallet).send(f"/aidants/{aidant.pk}", method="delete")

    assert response.status_code == 404
    aidant.refresh_from_db()
    assert aidant.revoked_at is None
