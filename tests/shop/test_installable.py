"""The till as an installable web app, as the server gives it: its manifest and PNG icons, its
service worker (the till's files only, never a page of it) and the page shown offline."""

import io
import json
import re
import struct
import zlib
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

from shop.views.installable import ASSETS
from tests.shop.conftest import make_cashier, make_shop, signed_in

pytestmark = pytest.mark.django_db


def png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def served(client, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body


def manifest_url(html: str) -> str:
    return re.search(r'<link rel="manifest" href="([^"]+)"', html)[1]


def test_the_manifest_makes_the_till_an_app_of_its_own(client):
    page = client.get("/shop/sign-in/").content.decode()
    status, body = served(client, manifest_url(page))
    manifest = json.loads(body)

    assert status == 200
    assert manifest["scope"] == "/shop/"
    assert manifest["start_url"].startswith(manifest["scope"])
    assert manifest["display"] == "standalone"
    assert manifest["lang"] == "fr"
    assert f'<meta name="theme-color" content="{manifest["theme_color"]}">' in page


def test_every_icon_of_the_manifest_is_served_at_its_size(client):
    manifest = json.loads(Path(finders.find("shop/manifest.json")).read_text())
    sizes = set()
    for icon in manifest["icons"]:
        status, data = served(client, f"/static/shop/{icon['src']}")
        assert status == 200, icon["src"]
        if icon["type"] == "image/png":
            width, height = png(data)
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add((width, icon["purpose"]))
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= sizes


def test_the_icons_are_drawn_from_the_svg_the_maskable_one_full_bleed(tmp_path):
    call_command("till_icons", to=tmp_path, stdout=io.StringIO())

    drawn = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    assert {name: png(data) for name, data in drawn.items()} == {
        "icon-192.png": (192, 192),
        "icon-512.png": (512, 512),
        "icon-maskable-512.png": (512, 512),
    }
    # A mask crops the corners: the maskable icon's are its background, the other's are clear.
    assert corner_alpha(drawn["icon-512.png"]) == 0
    assert corner_alpha(drawn["icon-maskable-512.png"]) == 255


def corner_alpha(data: bytes) -> int:
    """The alpha of the top-left pixel of an 8-bit PNG, RGB (opaque) or RGBA (whatever the row's
    filter, the first pixel of the first row is stored as it is)."""
    depth, colour = data[24], data[25]
    assert depth == 8
    if colour == 2:  # RGB: no transparency anywhere
        return 255
    assert colour == 6  # RGBA
    chunks, at = b"", 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            chunks += data[at + 8 : at + 8 + length]
        at += 12 + length
    return zlib.decompress(chunks)[1 + 3]  # the filter byte, then R, G, B, A


def test_the_service_worker_is_javascript_for_the_whole_till(client):
    response = client.get("/shop/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/shop/"
    assert response["Cache-Control"] == "no-cache"


def test_the_service_worker_keeps_the_tills_files_and_the_offline_page_only(client):
    cashier = signed_in(make_cashier(make_shop()))
    page = cashier.get("/shop/pay/").content.decode()
    worker = client.get("/shop/sw.js").content.decode()
    kept = json.loads(re.search(r"const ASSETS = (\[.*\]);", worker)[1])
    linked = set(re.findall(r'(?:href|src)="(/static/[^"]+)"', page))

    assert linked <= set(kept)
    assert json.loads(re.search(r"const OFFLINE = (.*);", worker)[1]) == "/shop/offline/"
    assert all(url.startswith("/static/shop/") for url in kept)


def test_a_changed_file_makes_a_new_service_worker(client, static_changed):
    before = client.get("/shop/sw.js").content
    static_changed("shop/till.css")
    after = client.get("/shop/sw.js").content
    cache = re.compile(rb"const CACHE = (.*);")
    assert cache.search(before)[1] != cache.search(after)[1]


@pytest.mark.parametrize("name", ASSETS)
def test_each_file_kept_is_found(name):
    assert finders.find(name)


def test_the_offline_page_says_a_payment_needs_a_connection_and_shows_no_shop(client):
    owner = make_shop(name="Fournil secret")
    page = signed_in(owner).get("/shop/offline/").content.decode()

    assert "La caisse a besoin d\u2019une connexion internet pour encaisser un paiement" in page
    assert "Fournil secret" not in page
    assert 'href="/shop/pay/"' in page


def test_the_offline_page_is_in_english_for_an_english_phone(client):
    page = client.get("/shop/offline/", headers={"accept-language": "en"}).content.decode()

    assert "The till needs an internet connection to take a payment." in page
