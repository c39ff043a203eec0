"""The funder's page in the admin links its logo to where the app serves it (the storage's own
URL, /media/..., is served by nothing): following the link gives the image."""

import re
from html import unescape

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from funders.tenancy import Role
from tests.factories import FunderFactory, make_staff

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5c1e4d10000000049454e44ae426082"
)


@pytest.fixture
def isere(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    funder = FunderFactory(name="Département de l'Isère")
    funder.logo.save("isere.png", ContentFile(PNG))
    return funder


def logo_link(page: str, name: str) -> str:
    (href,) = re.findall(rf'<a href="([^"]+)">{re.escape(name)}</a>', page)
    return unescape(href)


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.AGENT])  # the widget, the read only
def test_the_logo_link_of_the_funder_page_gives_the_image(client, isere, role):
    client.force_login(make_staff(funder=isere, role=role))

    page = client.get(reverse("admin:funders_funder_change", args=[isere.pk]))
    assert page.status_code == 200
    href = logo_link(page.content.decode(), isere.logo.name)
    assert not href.startswith("/media/")

    image = client.get(href)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content) == PNG


def test_a_funder_without_logo_has_no_link(client, operator):
    funder = FunderFactory()
    client.force_login(operator)

    page = client.get(reverse("admin:funders_funder_change", args=[funder.pk]))

    assert page.status_code == 200
    assert "file-upload" not in page.content.decode()  # the widget's "Currently:" line
