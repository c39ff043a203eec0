"""The merchant API's rate per key, counted in one round trip to the cache, which also reads the
API keys' generation (merchants/api_keys.py) and whatever other counts the operation asked for
(the code-guessing guard's: merchant_api/code_guessing.py): the authentication counts the request
and reads them at once (`counted_request`), so that a key held in the process' memory costs no
round trip of its own, and the throttle and the guard then read what the authentication left on
the request."""

from collections.abc import Sequence

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from rest_framework.throttling import SimpleRateThrottle

from merchants.api_keys import GENERATION


class MerchantKeyThrottle(SimpleRateThrottle):
    """Requests per API key (rate: settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]), counted
    in windows that open at a key's first request and last the rate's period: one round trip to
    the cache per request. (DRF's own throttle reads and writes back the list of the period's
    request times: two round trips and a pickle of up to the rate's count of timestamps, on
    every payment.) As with any fixed window, a burst across the edge of two windows can reach
    twice the rate for a moment."""

    scope = "merchant_key"

    def get_cache_key(self, request, view):
        return self.key_of(request.auth.digest)

    def key_of(self, digest: str) -> str:
        # The key's digest, not its id: an id can be reused (a rolled-back insert), a digest not.
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        # Counted by ApiKeyAuthentication in the round trip that read the keys' generation.
        window = getattr(request, "merchant_key_window", None)
        if window is None:
            window = _counted(self.get_cache_key(request, view), self.duration)
        count, self.retry_after = window
        return count <= self.num_requests

    def wait(self):
        return self.retry_after


def counted_request(
    digest: str, counts: Sequence[str] = ()
) -> tuple[tuple[int, int] | None, object, dict[str, int]]:
    """The window of the key of `digest` counted (its count, this request included, and the
    seconds until it ends; None when no rate is set), the keys' generation, and the integer
    counts kept in the cache under the names `counts` (0 for one absent), in one round trip to
    Redis. Counted before the key is known to exist: a secret that opens nothing fills a window
    of the rate's period at most."""
    throttle = MerchantKeyThrottle()
    if throttle.rate is None:
        values = cache.get_many([GENERATION, *counts])
        return None, values.get(GENERATION), {name: values.get(name, 0) for name in counts}
    count, seconds, generation, values = _counted_and_read(
        throttle.key_of(digest), throttle.duration, GENERATION, counts
    )
    return (count, seconds), generation, values


def _counted(key: str, seconds: int) -> tuple[int, int]:
    """The count of the window of `key`, this request included, and the seconds until the
    window ends."""
    count, seconds, _, _ = _counted_and_read(key, seconds, None, ())
    return count, seconds


def _counted_and_read(
    key: str, seconds: int, read: str | None, counts: Sequence[str]
) -> tuple[int, int, object, dict[str, int]]:
    """`_counted`, the cached value of `read` (None without it) and the counts of `counts`, in
    the same round trip. On Redis, the value read is the bytes Redis holds: compared, never
    decoded; a count is stored by Django's cache as its digits (an int is not pickled)."""
    backend = getattr(cache, "_cache", None)
    if isinstance(backend, RedisCacheClient):
        # Open the window if none is open, count, read its end (and what else is asked): one
        # round trip. INCR keeps the expiry SET gave; the count is an integer, as Django's
        # cache stores one.
        name = cache.make_and_validate_key(key)
        pipeline = backend.get_client(name, write=True).pipeline(transaction=False)
        pipeline.set(name, 0, ex=seconds, nx=True)
        pipeline.incr(name)
        pipeline.ttl(name)
        reads = [read] if read is not None else []
        reads += counts
        if reads:
            pipeline.mget([cache.make_and_validate_key(each) for each in reads])
        _opened, count, ttl, *read_values = pipeline.execute()
        if ttl == -1:
            # The window expired between SET and INCR, and INCR opened a new one without an
            # end: give it one, or the key would count forever and stay refused.
            backend.get_client(name, write=True).expire(name, seconds)
            ttl = seconds
        values = read_values[0] if read_values else []
        value, counted = (values[0], values[1:]) if read is not None else (None, values)
        found = {
            name: int(raw) if raw is not None else 0
            for name, raw in zip(counts, counted, strict=True)
        }
        return count, max(ttl, 1), value, found
    # Any other cache (the quick start's, in memory): the window's end is not kept, so a refused
    # client is told to wait the whole period, the most it may have to.
    values = cache.get_many([*([read] if read is not None else []), *counts])
    value = values.get(read) if read is not None else None
    found = {name: values.get(name, 0) for name in counts}
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key), seconds, value, found
    except ValueError:  # the window ended between the two calls: this request opens the next
        cache.add(key, 1, timeout=seconds)
        return 1, seconds, value, found
