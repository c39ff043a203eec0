"""The merchant API's rate per key, counted in one round trip to the cache, which also reads the
API keys' generation (merchants/api_keys.py): the authentication counts the request and reads it
at once (`counted_request`), so that a key held in the process' memory costs no round trip of
its own, and the throttle then reads the count the authentication left on the request."""

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


def counted_request(digest: str) -> tuple[tuple[int, int] | None, object]:
    """The window of the key of `digest` counted (its count, this request included, and the
    seconds until it ends; None when no rate is set) and the keys' generation, in one round trip
    to Redis. Counted before the key is known to exist: a secret that opens nothing fills a
    window of the rate's period at most."""
    throttle = MerchantKeyThrottle()
    if throttle.rate is None:
        return None, cache.get(GENERATION)
    count, seconds, generation = _counted_and_read(
        throttle.key_of(digest), throttle.duration, GENERATION
    )
    return (count, seconds), generation


def _counted(key: str, seconds: int) -> tuple[int, int]:
    """The count of the window of `key`, this request included, and the seconds until the
    window ends."""
    count, seconds, _ = _counted_and_read(key, seconds, None)
    return count, seconds


def _counted_and_read(key: str, seconds: int, read: str | None) -> tuple[int, int, object]:
    """`_counted`, and the cached value of `read` (None without it) in the same round trip. On
    Redis, the value read is the bytes Redis holds: compared, never decoded."""
    backend = getattr(cache, "_cache", None)
    if isinstance(backend, RedisCacheClient):
        # Open the window if none is open, count, read its end: three commands, one round trip.
        # INCR keeps the expiry SET gave; the count is an integer, as Django's cache stores one.
        name = cache.make_and_validate_key(key)
        pipeline = backend.get_client(name, write=True).pipeline(transaction=False)
        pipeline.set(name, 0, ex=seconds, nx=True)
        pipeline.incr(name)
        pipeline.ttl(name)
        if read is not None:
            pipeline.get(cache.make_and_validate_key(read))
        _opened, count, ttl, *value = pipeline.execute()
        if ttl == -1:
            # The window expired between SET and INCR, and INCR opened a new one without an
            # end: give it one, or the key would count forever and stay refused.
            backend.get_client(name, write=True).expire(name, seconds)
            ttl = seconds
        return count, max(ttl, 1), value[0] if value else None
    # Any other cache (the quick start's, in memory): the window's end is not kept, so a refused
    # client is told to wait the whole period, the most it may have to.
    value = cache.get(read) if read is not None else None
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key), seconds, value
    except ValueError:  # the window ended between the two calls: this request opens the next
        cache.add(key, 1, timeout=seconds)
        return 1, seconds, value
