"""A shop's staff see only their shop, on every till page: another shop's payment, statement,
key, endpoint or member answers 404 as if it did not exist, and no list shows another shop's
records. Every URL of the till is tried: a new page cannot ship without a line here."""

import uuid
from datetime import timedelta

import pytest
from django.urls import get_resolver, reverse
from django.utils import timezone

from merchants.payments import payment_authorize
from merchants.services import api_key_create
from merchants.settlement import settlement_close
from merchants.webhooks import webhook_endpoint_create
from shop.models import ShopInvitation
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code
from tests.shop.conftest import make_cashier, make_shop, signed_in

pytestmark = pytest.mark.django_db


def build_shop(tag: str) -> dict:
    owner = make_shop(name=f"Boutique {tag}")
    cashier = make_cashier(owner)
    merchant = owner.merchant
    wallet = BeneficiaryFactory().wallet
    make_allocation(beneficiary=wallet.beneficiary, amount=10_000)
    decision = payment_authorize(
        merchant=merchant,
        amount=1_500,
        currency="EUR",
        payment_code=make_payment_code(wallet),
        capture=True,
        idempotency_key=f"iso-{tag}",
    )
    batch = settlement_close(
        merchant=merchant, currency="EUR", until=timezone.now() + timedelta(seconds=1)
    )
    key, _secret = api_key_create(merchant=merchant, name=f"Clé {tag}")
    endpoint = webhook_endpoint_create(
        merchant=merchant, url=f"https://{tag.lower()}.example.org/hook"
    )
    ShopInvitation.objects.create(
        merchant=merchant,
        email=f"invite-{tag.lower()}@example.org",
        digest=uuid.uuid4().hex,
        expires_at=timezone.now() + timedelta(days=1),
    )
    return {
        "owner": owner,
        "cashier": cashier,
        "decision": decision,
        "batch": batch,
        "key": key,
        "endpoint": endpoint,
        "words": [
            f"Boutique {tag}",
            decision.reference,
            batch.reference,
            key.prefix,
            endpoint.url,
            cashier.email,
            f"invite-{tag.lower()}@example.org",
        ],
    }


# Each till URL with another shop's object in it, and how it is asked (method).
def other_shops_urls(theirs: dict) -> dict[str, tuple[str, str]]:
    ref = theirs["decision"].reference
    urls = {
        "payment": ("get", f"/shop/payments/{ref}/"),
        "receipt": ("get", f"/shop/payments/{ref}/receipt/"),
        "operation": ("post", f"/shop/payments/{ref}/refund/"),
        "statement": ("get", f"/shop/settlements/{theirs['batch'].reference}/"),
        "statement-csv": ("get", f"/shop/settlements/{theirs['batch'].reference}/csv/"),
        "team-remove": ("post", f"/shop/team/{theirs['cashier'].pk}/remove/"),
        "api-key-revoke": ("post", f"/shop/integrations/keys/{theirs['key'].pk}/revoke/"),
        "webhook-disable": (
            "post",
            f"/shop/integrations/webhooks/{theirs['endpoint'].pk}/disable/",
        ),
    }
    assert set(urls) == OBJECT_PAGES
    return urls


# Pages without an object in their address: lists and forms of the member's own shop, and the
# pages before signing in.
OWN_PAGES = {
    "home": None,
    "pay": "/shop/pay/",
    "today": "/shop/today/",
    "details": "/shop/shop/",
    "settlements": "/shop/settlements/",
    "team": "/shop/team/",
    "integrations": "/shop/integrations/",
    "api-key-new": None,
    "webhook-new": None,
    # The installed till's service worker and offline page: the same for everyone.
    "service-worker": "/shop/sw.js",
    "offline": "/shop/offline/",
}
PUBLIC = {
    "sign-in",
    "second-factor",
    "sign-out",
    "register",
    "register-details",
    "registered",
    "join-team",
}


OBJECT_PAGES = {
    "payment",
    "receipt",
    "operation",
    "statement",
    "statement-csv",
    "team-remove",
    "api-key-revoke",
    "webhook-disable",
}


def test_every_till_url_is_tried():
    names = {pattern.name for pattern in get_resolver("shop.urls").url_patterns}
    assert names == OBJECT_PAGES | set(OWN_PAGES) | PUBLIC


def test_a_shops_staff_never_reach_another_shops_records():
    mine, theirs = build_shop("Alpha"), build_shop("Beta")
    for member in (mine["owner"], mine["cashier"]):
        client = signed_in(member)
        for name, (method, url) in other_shops_urls(theirs).items():
            response = getattr(client, method)(url, {"amount": "1", "attempt": str(uuid.uuid4())})
            expected = {403, 404} if not member.is_owner else {404}
            assert response.status_code in expected, (member.role, name, response.status_code)
        for name, url in OWN_PAGES.items():
            if url is None:
                continue
            response = client.get(url)
            if response.status_code == 403:
                assert not member.is_owner, name
                continue
            assert response.status_code == 200, (name, response.status_code)
            page = response.content.decode()
            leaked = [word for word in theirs["words"] if word in page]
            assert not leaked, (member.role, name, leaked)
    # Nothing of theirs changed.
    theirs["key"].refresh_from_db()
    theirs["endpoint"].refresh_from_db()
    assert theirs["key"].revoked_at is None and theirs["endpoint"].is_active
    assert theirs["cashier"].user.is_active
    assert theirs["decision"].refunds.count() == 0


def test_the_own_pages_do_show_the_shops_own_records():
    """The check above would pass on empty pages: the same pages show one's own records."""
    mine = build_shop("Gamma")
    client = signed_in(mine["owner"])
    reference = mine["decision"].reference
    assert reference in client.get(f"/shop/payments/{reference}/").content.decode()
    assert client.get(reverse("shop:today")).context["payments"]
    assert mine["cashier"].email in client.get("/shop/team/").content.decode()
    assert mine["key"].prefix in client.get("/shop/integrations/").content.decode()
    assert client.get(f"/shop/settlements/{mine['batch'].reference}/").status_code == 200
