"""Shops with a till: an owner (second factor set up) and cashiers, signed-in clients, and a
local fake of INSEE's API Sirene speaking its JSON format."""

import base64
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_otp.oath import totp

from merchants.services import merchant_approve
from shop.models import Role, ShopMember
from shop.services import shop_register, totp_device
from tests.factories import siret

_numbers = itertools.count(1)
PASSWORD = "Caisse-du-marche-2026"
SIRENE_KEY = "test-insee-key"


def make_shop(*, approved: bool = True, name: str | None = None, **overrides) -> ShopMember:
    """A registered shop and its owner (password PASSWORD), through the onboarding service."""
    n = next(_numbers)
    fields = {
        "siret": siret(70_000 + n),
        "legal_name": f"Boulangerie {n} SARL",
        "trade_name": name or f"Boulangerie du marché {n}",
        "mcc": "5462",
        "address": "3 place Grenette",
        "postcode": "38000",
        "city": "Grenoble",
        "commune_code": "38185",
        "iban": "FR7630006000011234567890189",
        **overrides,
    }
    owner = shop_register(owner_email=f"owner{n}@example.org", password=PASSWORD, **fields)
    if approved:
        merchant_approve(merchant=owner.merchant)
    return owner


def make_cashier(owner: ShopMember) -> ShopMember:
    n = next(_numbers)
    email = f"cashier{n}@example.org"
    user = get_user_model().objects.create_user(f"shop-cashier-{n}", email, PASSWORD)
    return ShopMember.objects.create(
        user=user, merchant=owner.merchant, email=email, role=Role.CASHIER
    )


def current_code(member: ShopMember) -> str:
    return f"{totp(totp_device(member).bin_key):06d}"


def signed_in(member: ShopMember) -> Client:
    """A client signed in to the till as `member`, through the sign-in pages (an owner gives
    their password, then a code of their authenticator)."""
    client = Client()
    response = client.post("/shop/sign-in/", {"email": member.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    if member.is_owner:
        response = client.post("/shop/sign-in/code/", {"code": current_code(member)})
        assert response.status_code == 302, response.content
    return client


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Each test signs people in several times: the default hasher's cost is the point in
    # production and only slowness here.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture
def owner(db):
    return make_shop()


@pytest.fixture
def cashier(owner):
    return make_cashier(owner)


# --- a fake API Sirene --------------------------------------------------------------------


def sirene_establishment(siret_number: str, **period) -> dict:
    """API Sirene's answer to GET /siret/{siret} (version 3.11), trimmed to the fields the
    client reads and a few it does not."""
    return {
        "header": {"statut": 200, "message": "ok"},
        "etablissement": {
            "siren": siret_number[:9],
            "nic": siret_number[9:],
            "siret": siret_number,
            "statutDiffusionEtablissement": "O",
            "dateCreationEtablissement": "2012-03-01",
            "uniteLegale": {
                "etatAdministratifUniteLegale": "A",
                "denominationUniteLegale": "LA FOURNEE DU VIEUX TEMPLE",
                "activitePrincipaleUniteLegale": "10.71C",
                "categorieJuridiqueUniteLegale": "5499",
            },
            "adresseEtablissement": {
                "numeroVoieEtablissement": "4",
                "typeVoieEtablissement": "RUE",
                "libelleVoieEtablissement": "DU VIEUX TEMPLE",
                "codePostalEtablissement": "38000",
                "libelleCommuneEtablissement": "GRENOBLE",
                "codeCommuneEtablissement": "38185",
            },
            "periodesEtablissement": [
                {
                    "dateFin": None,
                    "dateDebut": "2012-03-01",
                    "etatAdministratifEtablissement": "A",
                    "enseigne1Etablissement": "AU BON PAIN",
                    "denominationUsuelleEtablissement": None,
                    "activitePrincipaleEtablissement": "47.24Z",
                    "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
                    **period,
                }
            ],
        },
    }


class FakeSirene:
    def __init__(self):
        self.known: dict[str, dict] = {}
        self.requests: list[tuple[str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append((self.path, self.headers.get("X-INSEE-Api-Key-Integration")))
                if self.headers.get("X-INSEE-Api-Key-Integration") != SIRENE_KEY:
                    return self._send(401, {"fault": {"code": 900901, "message": "Invalid"}})
                number = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/siret/") or number not in fake.known:
                    message = f"Aucun élément trouvé pour le siret {number}"
                    return self._send(404, {"header": {"statut": 404, "message": message}})
                return self._send(200, fake.known[number])

            def _send(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sirene(settings):
    """A fake register, configured: settings point the client at it with its key."""
    fake = FakeSirene()
    settings.SIRENE_API_BASE = fake.url
    settings.SIRENE_API_KEY = SIRENE_KEY
    yield fake
    fake.close()


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode()
