"""`manage.py till_icons`: the till's PNG icons, drawn from its SVG icon (shop/static/shop/
icon.svg) by CairoSVG. Browsers install a web app only with PNG icons of 192 and 512 pixels;
Android crops a "maskable" icon to its own shape (a circle, a squircle), so that one is drawn
full-bleed with the drawing inside the safe zone (the centre 80 %). Run it after changing the
SVG and commit the PNGs: the server never draws them."""

from pathlib import Path
from xml.etree import ElementTree

import cairosvg
from django.core.management.base import BaseCommand

STATIC = Path(__file__).resolve().parents[2] / "static" / "shop"
SVG = "{http://www.w3.org/2000/svg}"
# The part of a maskable icon that no mask may crop (the W3C manifest's safe zone).
SAFE_ZONE = 0.8


def maskable(svg: bytes) -> bytes:
    """The icon on a full square of its background colour (the fill of its first shape), the
    drawing shrunk into the safe zone."""
    ElementTree.register_namespace("", SVG[1:-1])
    root = ElementTree.fromstring(svg)
    _x, _y, width, height = (float(n) for n in root.attrib["viewBox"].split())
    background = root[0].attrib["fill"]
    group = ElementTree.Element(
        f"{SVG}g",
        transform=f"translate({width * (1 - SAFE_ZONE) / 2} {height * (1 - SAFE_ZONE) / 2}) "
        f"scale({SAFE_ZONE})",
    )
    group.extend(list(root))
    for child in list(root):
        root.remove(child)
    root.append(
        ElementTree.Element(f"{SVG}rect", width=str(width), height=str(height), fill=background)
    )
    root.append(group)
    return ElementTree.tostring(root)


def draw(svg: bytes, size: int) -> bytes:
    return cairosvg.svg2png(bytestring=svg, output_width=size, output_height=size)


class Command(BaseCommand):
    help = "Draw the till's PNG icons (192, 512, maskable 512) from its SVG icon."

    def add_arguments(self, parser):
        parser.add_argument("--to", type=Path, default=STATIC, help="Folder to write them in.")

    def handle(self, *args, to: Path, **options):
        svg = (STATIC / "icon.svg").read_bytes()
        to.mkdir(parents=True, exist_ok=True)
        for name, source, size in (
            ("icon-192.png", svg, 192),
            ("icon-512.png", svg, 512),
            ("icon-maskable-512.png", maskable(svg), 512),
        ):
            (to / name).write_bytes(draw(source, size))
            self.stdout.write(str(to / name))
