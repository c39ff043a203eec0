"""The served application's heap, settled once it has started (config/wsgi.py, config/asgi.py).

A server's worker holds a few hundred thousand long-lived objects (modules, classes, the
URLconf, the serializers, the settings). Python's collector walks them all at each full
collection, which a request server triggers every few hundred requests: in a granian worker
that was the largest share of its processor time per request beyond the in-process figure
(BENCHMARKS.md, issue 19 part 9). Imported before the first request and frozen (gc.freeze: left
out of every collection from then on), they are never walked again; the objects of each request
are collected as before."""

import gc


def settle() -> None:
    """Imports what the first request would (the URLconf: every view, serializer and form
    module it names), drops the garbage start-up made, and freezes what is left."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 -- the import is the point
    gc.collect()
    gc.freeze()
