"""The merchant API's rate per key (merchant_api.throttles.MerchantKeyThrottle): a window opened by
a key's first request, counted in one round trip to the cache, in memory or in Redis."""

import time

import pytest
import time_machine
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient

from merchant_api.throttles import MerchantKeyThrottle, _counted
from tests.merchant_api.conftest import MerchantClient

ON_REDIS = isinstance(getattr(cache, "_cache", None), RedisCacheClient)
KEYS = ("throttle_r", "throttle_x")


@pytest.fixture
def redis_cache(settings):
    """The cache on Redis, as production's: CACHE_URL's, else a Redis broker's server (CI's
    PostgreSQL run has one), for the keys of these tests only."""
    if not ON_REDIS:
        url = getattr(settings, "CELERY_BROKER_URL", "") or ""
        if not url.startswith("redis://"):
            pytest.skip("needs Redis: CACHE_URL or CELERY_BROKER_URL=redis://...")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "test-throttle",
            }
        }
    cache.delete_many(KEYS)
    yield cache
    cache.delete_many(KEYS)


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(MerchantKeyThrottle, "THROTTLE_RATES", {"merchant_key": "3/minute"})


def test_a_key_over_its_rate_is_told_how_long_to_wait(api, merchant, three_a_minute):
    codes = [api.read("/authorizations").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = api.read("/authorizations")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another key of the same merchant has its own window.
    assert MerchantClient(merchant).read("/authorizations").status_code == 200


# Redis expires keys by its own clock, which time_machine does not move.
@pytest.mark.skipif(ON_REDIS, reason="the in-memory cache's window")
def test_the_window_counts_from_its_first_request_and_closes():
    assert [_counted("throttle_t", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert 1 <= _counted("throttle_t", 60)[1] <= 60
    with time_machine.travel(time.time() + 61, tick=False):
        assert _counted("throttle_t", 60)[0] == 1


def test_on_redis_the_count_is_one_round_trip_and_expires(redis_cache, monkeypatch):
    import redis

    sent = []
    original = redis.client.Pipeline.execute

    def execute(pipeline, *args, **kwargs):
        sent.append([command[0][0] for command in pipeline.command_stack])
        return original(pipeline, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    assert [_counted("throttle_r", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert sent == [["SET", "INCRBY", "TTL"]] * 3
    count, retry_after = _counted("throttle_r", 60)
    assert (count, 1 <= retry_after <= 60) == (4, True)
    assert 0 < cache._cache.get_client().ttl(cache.make_and_validate_key("throttle_r")) <= 60
    # Django's cache reads the count as the integer it is.
    assert cache.get("throttle_r") == 4


def test_on_redis_a_window_left_without_an_end_gets_one(redis_cache):
    # What INCR leaves when the window expires between the pipeline's SET and INCR: a count with
    # no expiry, which would refuse the key for good once over the rate.
    client = cache._cache.get_client(write=True)
    name = cache.make_and_validate_key("throttle_x")
    client.set(name, 5)
    assert client.ttl(name) == -1

    count, retry_after = _counted("throttle_x", 60)

    assert (count, retry_after) == (6, 60)
    assert 0 < client.ttl(name) <= 60


def test_on_redis_the_count_reads_the_keys_generation_in_the_same_round_trip(
    redis_cache, monkeypatch
):
    import redis

    from merchant_api.throttles import counted_request
    from merchants.api_keys import GENERATION

    sent = []
    original = redis.client.Pipeline.execute

    def execute(pipeline, *args, **kwargs):
        sent.append([command[0][0] for command in pipeline.command_stack])
        return original(pipeline, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    monkeypatch.setattr(MerchantKeyThrottle, "THROTTLE_RATES", {"merchant_key": "3/minute"})
    cache.delete(GENERATION)
    digest = "r" * 64
    name = MerchantKeyThrottle().key_of(digest)
    cache.delete(name)
    try:
        assert counted_request(digest) == ((1, 60), None, {})
        cache.set(GENERATION, "g1", timeout=None)
        window, generation, _ = counted_request(digest)
        cache.set(GENERATION, "g2", timeout=None)
        cache.set("throttle_x", 7)
        _window, other, counts = counted_request(digest, ["throttle_x", "throttle_r"])
    finally:
        cache.delete_many([GENERATION, name])

    assert sent == [["SET", "INCRBY", "TTL", "MGET"]] * 3
    assert window[0] == 2 and 1 <= window[1] <= 60
    assert generation is not None and other not in (None, generation)
    # The counts asked for, read in the same round trip; 0 for one the cache does not hold.
    assert counts == {"throttle_x": 7, "throttle_r": 0}


@pytest.mark.django_db
def test_on_redis_a_code_payment_reads_the_guards_counts_with_the_rate(
    redis_cache, api, beneficiary, food_pocket, settings, monkeypatch
):
    import redis

    from merchant_api.code_guessing import code_guessing_keys
    from wallet.payment_codes import payment_code_create

    monkeypatch.setattr(MerchantKeyThrottle, "THROTTLE_RATES", {"merchant_key": "100/minute"})
    settings.PAYMENT_CODE_FAILURES_PER_MERCHANT = 1
    sent = []
    original_pipeline, original_command = redis.client.Pipeline.execute, redis.Redis.execute_command

    def pipelined(pipeline, *args, **kwargs):
        sent.append([command[0][0] for command in pipeline.command_stack])
        return original_pipeline(pipeline, *args, **kwargs)

    def command(client, *args, **kwargs):
        sent.append([args[0]])
        return original_command(client, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", pipelined)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    code = payment_code_create(wallet=beneficiary.wallet)[1]
    body = {"amount": 1_000, "currency": "EUR", "payment_code": code}
    merchant_count, _platform_count = code_guessing_keys(api.merchant.pk)
    try:
        # The key held in memory (its first use, written on the key, drops what was held).
        assert [api.read("/authorizations").status_code for _ in range(2)] == [200, 200]
        # The merchant has sent its one wrong code of the window (as count_failure counts it).
        cache.set(merchant_count, 1)
        sent.clear()
        refused = api.send("/authorizations", body)
        round_trips = list(sent)
        cache.delete(merchant_count)
        paid = api.send("/authorizations", body)
    finally:
        cache.delete_many(code_guessing_keys(api.merchant.pk))

    # The merchant's count, read with the key's rate, refuses the right code: one round trip
    # to Redis for the request, no read of the guard's own.
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        429, "payment_code_attempts_exceeded",
    )  # fmt: skip
    assert round_trips == [["SET", "INCRBY", "TTL", "MGET"]]
    # And the count gone, the same code pays.
    assert paid.status_code == 201
