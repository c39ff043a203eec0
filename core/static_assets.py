"""What the installable apps' service workers keep for an offline start: a digest of their shell's
static files, so that a new version of any of them makes a new service worker (whose cache name
carries the digest), which replaces what the phones keep."""

import hashlib
from collections.abc import Iterable

from django.contrib.staticfiles import finders


def static_digest(names: Iterable[str]) -> str:
    """The digest of these static files' contents. Read at each request: a few small files."""
    digest = hashlib.sha256()
    for name in names:
        path = finders.find(name)
        if not isinstance(path, str):
            raise LookupError(f"static file not found: {name}")
        with open(path, "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()[:12]
