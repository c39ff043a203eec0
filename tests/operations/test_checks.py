"""`check --deploy` warns when rate limits would be counted per process."""

from operations.checks import cache_shared_by_every_process


def test_an_in_process_cache_is_reported(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [warning.id for warning in cache_shared_by_every_process(None)] == ["operations.W001"]


def test_redis_is_not(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
        }
    }
    assert cache_shared_by_every_process(None) == []
