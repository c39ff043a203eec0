"""config/wsgi.py and config/asgi.py settle the served application's heap once it has started:
the URLconf imported (every view module the first request would import) and what is left after
a collection frozen, out of every later collection."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_the_served_application_starts_with_its_urlconf_imported_and_its_heap_frozen(module):
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, sys\n"
            "assert gc.get_freeze_count() == 0\n"
            f"import {module}\n"
            "print(gc.get_freeze_count(), 'merchant_api.urls' in sys.modules)",
        ],
        cwd=ROOT,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()

    frozen, urlconf_imported = int(shown[0]), shown[1] == "True"
    assert urlconf_imported
    assert frozen > 100_000  # Django, DRF, the project's modules: a few hundred thousand objects
