"""Who reaches a till: shop staff only, owners with a second factor, sessions that end, sign-in
tries limited; shop staff never reach the admin, a funder's staff never reach a till."""

import re
import time

import pytest
from django.core import mail
from django.test import Client

from shop.models import ShopInvitation, ShopMember
from tests.shop.conftest import PASSWORD, current_code, make_cashier, signed_in

pytestmark = pytest.mark.django_db


def test_a_cashier_signs_in_with_email_and_password(cashier):
    client = Client()
    response = client.post("/shop/sign-in/", {"email": cashier.email.upper(), "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/shop/pay/").status_code == 200


def test_a_wrong_password_signs_nobody_in(cashier):
    client = Client()
    response = client.post("/shop/sign-in/", {"email": cashier.email, "password": "nope"})
    assert response.status_code == 200
    assert response.context["error"]
    assert client.get("/shop/pay/").status_code == 302


def test_an_owner_needs_a_code_from_their_authenticator(owner):
    client = Client()
    response = client.post("/shop/sign-in/", {"email": owner.email, "password": PASSWORD})
    assert response["Location"].startswith("/shop/sign-in/code/")
    # The password alone opens nothing.
    assert client.get("/shop/pay/").status_code == 302
    page = client.get("/shop/sign-in/code/")
    assert page.context["setup"] and page.context["qr"].startswith("data:image/svg+xml")
    assert client.post("/shop/sign-in/code/", {"code": "000000"}).context["error"]
    assert client.get("/shop/pay/").status_code == 302
    # Right after a wrong code, even the right one waits (django-otp's throttle: 1 s, doubled
    # at each failure).
    assert client.post("/shop/sign-in/code/", {"code": current_code(owner)}).status_code == 200
    time.sleep(1.1)
    response = client.post("/shop/sign-in/code/", {"code": current_code(owner)})
    assert response.status_code == 302
    assert client.get("/shop/team/").status_code == 200
    # Set up once: the next sign-in asks for the code without showing the key again.
    other = Client()
    other.post("/shop/sign-in/", {"email": owner.email, "password": PASSWORD})
    assert other.get("/shop/sign-in/code/").context["setup"] is False


def test_sign_in_tries_are_limited(cashier, settings):
    settings.SHOP_SIGN_IN_TRIES_PER_EMAIL = 3
    client = Client()
    for _ in range(3):
        client.post("/shop/sign-in/", {"email": cashier.email, "password": "wrong"})
    # Even the right password is refused for now.
    response = client.post("/shop/sign-in/", {"email": cashier.email, "password": PASSWORD})
    assert response.status_code == 429
    assert client.get("/shop/pay/").status_code == 302


def test_a_session_ends_after_the_working_day(cashier, settings):
    client = signed_in(cashier)
    session = client.session
    session["shop_signed_in_at"] = int(time.time()) - 13 * 3600
    session.save()
    assert client.get("/shop/pay/").status_code == 302


def test_shop_staff_never_reach_the_admin(owner, cashier):
    for member in (owner, cashier):
        client = signed_in(member)
        response = client.get("/admin/merchants/merchant/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_funders_staff_and_an_operator_never_reach_a_till(manager, operator, owner):
    for user in (manager, operator):
        client = Client()
        client.force_login(user)
        assert client.get("/shop/pay/").status_code == 302
        assert client.get("/shop/today/").status_code == 302
        response = client.post("/shop/sign-in/", {"email": user.email, "password": "password"})
        assert response.context["error"]


def test_a_cashier_does_not_reach_the_owners_pages(cashier):
    client = signed_in(cashier)
    for path in ("/shop/shop/", "/shop/settlements/", "/shop/team/", "/shop/integrations/"):
        assert client.get(path).status_code == 403, path


def test_an_owner_invites_a_cashier_by_a_one_time_link(owner, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/shop/team/", {"email": "Paul@Example.org"})
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == ["paul@example.org"]
    assert PASSWORD not in message.body and "password:" not in message.body.lower()
    link = re.search(r"http://\S+/shop/join/(\S+)/", message.body)
    token = link.group(1)
    assert ShopInvitation.objects.get().digest != token  # only its digest is kept
    visitor = Client()
    response = visitor.post(
        f"/shop/join/{token}/",
        {"password": "Un-autre-mot-2026", "password_again": "Un-autre-mot-2026"},
    )
    assert response.status_code == 302
    paul = ShopMember.objects.get(email="paul@example.org")
    assert (paul.merchant, paul.role) == (owner.merchant, "cashier")
    # The link works once.
    assert visitor.get(f"/shop/join/{token}/").status_code == 404
    response = visitor.post(
        "/shop/sign-in/", {"email": "paul@example.org", "password": "Un-autre-mot-2026"}
    )
    assert response.status_code == 302


def test_a_weak_password_is_refused_when_joining(owner, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/shop/team/", {"email": "lea@example.org"})
    token = re.search(r"/shop/join/(\S+)/", mail.outbox[0].body).group(1)
    response = Client().post(f"/shop/join/{token}/", {"password": "123", "password_again": "123"})
    assert response.status_code == 400
    assert not ShopMember.objects.filter(email="lea@example.org").exists()


def test_a_removed_cashier_can_no_longer_sign_in(owner):
    cashier = make_cashier(owner)
    cashier_client = signed_in(cashier)
    response = signed_in(owner).post(f"/shop/team/{cashier.pk}/remove/")
    assert response.status_code == 302
    assert cashier_client.get("/shop/pay/").status_code == 302
    response = Client().post("/shop/sign-in/", {"email": cashier.email, "password": PASSWORD})
    assert response.context["error"]


def test_shop_staff_cannot_use_the_admins_second_factor_pages(owner, cashier):
    for member in (owner, cashier):
        client = signed_in(member)
        for path in ("/admin/second-factor/setup/", "/admin/second-factor/verify/"):
            response = client.get(path)
            assert response.status_code == 302, path
            assert response["Location"].startswith("/admin/login/"), path
