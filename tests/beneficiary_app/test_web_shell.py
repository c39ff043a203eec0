"""The mobile web app's page, manifest, icons and service worker, as the server gives them."""

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import resolve

from beneficiary_app.api.me import MeView
from beneficiary_app.api.payment_codes import PaymentCodeCreateApi
from beneficiary_app.web import views

APP = "/app/"


class _Page(HTMLParser):
    """The parts of the page the tests read: <html lang>, the JSON blocks, links and scripts."""

    def __init__(self):
        super().__init__()
        self.lang = None
        self.json = {}
        self.links = {}
        self.scripts = []
        self.meta = {}
        self._json_id = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "script" and attrs.get("type") == "application/json":
            self._json_id = attrs["id"]
        elif tag == "script" and "src" in attrs:
            self.scripts.append(attrs)
        elif tag == "link":
            self.links[attrs["rel"]] = attrs["href"]
        elif tag == "meta" and "name" in attrs:
            self.meta[attrs["name"]] = attrs["content"]

    def handle_data(self, data):
        if self._json_id:
            self.json[self._json_id] = json.loads(data)
            self._json_id = None


def page(client, **headers) -> _Page:
    response = client.get(APP, **headers)
    assert response.status_code == 200
    parsed = _Page()
    parsed.feed(response.content.decode())
    return parsed


def served(client, url: str):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_app_is_in_french_by_default(client):
    shell = page(client)
    assert shell.lang == "fr"
    assert shell.meta["viewport"] == "width=device-width, initial-scale=1"  # zoom allowed


def test_the_app_is_in_english_when_the_phone_asks(client):
    assert page(client, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").lang == "en"


def test_the_language_chosen_in_the_app_wins_over_the_phones(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert page(client, HTTP_ACCEPT_LANGUAGE="fr-FR").lang == "en"


def test_the_page_tells_the_script_where_the_api_is(client):
    config = page(client).json["config"]
    assert resolve(config["api"] + "me").func.view_class is MeView
    assert resolve(config["api"] + "payment-codes").func.view_class is PaymentCodeCreateApi
    assert config["serviceWorker"] == "/app/sw.js"
    assert config["scope"] == APP
    assert [code for code, _ in config["languages"]] == ["fr", "en"]


def test_the_page_carries_every_text_the_script_shows_and_no_other(client):
    strings = page(client, HTTP_ACCEPT_LANGUAGE="en").json["strings"]
    script = Path(finders.find("mobile/app.js")).read_text()
    used = set(re.findall(r"\bS\.(\w+)", script)) | set(re.findall(r'\bt\("(\w+)"', script))
    # Keys the script picks by name from a table or an argument.
    used |= set(re.findall(r'"((?:card|event|done|amount)_\w+)"', script))
    assert used - strings.keys() == set()
    assert strings.keys() - used == set()
    assert strings["home_title"] == "My aid"


def test_the_manifest_makes_the_app_installable(client):
    shell = page(client)
    response, body = served(client, shell.links["manifest"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    manifest = json.loads(body)
    assert manifest["name"]
    assert manifest["short_name"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == APP
    assert manifest["scope"] == APP
    assert manifest["theme_color"] == shell.meta["theme-color"]
    assert manifest["lang"] == "fr"


def test_every_icon_of_the_manifest_exists_at_its_size(client):
    manifest = json.loads(Path(finders.find("mobile/manifest.json")).read_text())
    png_sizes = set()
    for icon in manifest["icons"]:
        path = finders.find(f"mobile/{icon['src']}")
        assert path, icon["src"]
        data = Path(path).read_bytes()
        if icon["type"] == "image/png":
            width, height = png_size(data)
            assert icon["sizes"] == f"{width}x{height}"
            png_sizes.add(width)
        else:
            assert icon["type"] == "image/svg+xml"
            assert ElementTree.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"
        response, _ = served(client, f"{settings.STATIC_URL.rstrip('/')}/mobile/{icon['src']}")
        assert response.status_code == 200
    assert {192, 512} <= png_sizes


def test_the_page_links_its_files_and_the_server_finds_them(client):
    shell = page(client)
    urls = [shell.links["stylesheet"], shell.links["icon"], shell.links["apple-touch-icon"]]
    urls += [script["src"] for script in shell.scripts]
    assert any(script.get("type") == "module" for script in shell.scripts)
    for url in urls:
        response, body = served(client, "/" + url.lstrip("/"))
        assert response.status_code == 200, url
        assert body
    response, _ = served(client, shell.scripts[0]["src"])
    assert response["Content-Type"].startswith("text/javascript")


def test_the_service_worker_is_javascript_for_the_whole_app(client):
    response = client.get("/app/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == APP
    assert response["Cache-Control"] == "no-cache"


def test_the_service_worker_keeps_the_pages_files_and_no_api_answer(client):
    shell = page(client)
    worker = client.get("/app/sw.js").content.decode()
    kept = json.loads(re.search(r"const ASSETS = (\[.*\]);", worker)[1])
    assert json.loads(re.search(r"const SHELL = (.*);", worker)[1]) == APP
    assert shell.links["stylesheet"] in kept
    assert shell.scripts[0]["src"] in kept
    assert shell.links["manifest"] in kept
    assert not [url for url in kept if url.startswith(shell.json["config"]["api"])]


def test_a_changed_file_makes_a_new_service_worker(client, static_changed):
    before = client.get("/app/sw.js").content
    static_changed("mobile/app.css")
    after = client.get("/app/sw.js").content
    cache = re.compile(rb"const CACHE = (.*);")
    assert cache.search(before)[1] != cache.search(after)[1]


@pytest.mark.parametrize("name", list(views.ASSETS.values()))
def test_each_file_of_the_app_is_found(name):
    assert finders.find(name)
