"""The merchant API's keys as each request reads them: the key, its merchant and the merchant's
payable account, kept in the cache (Redis in production, shared by every server) for
API_KEY_CACHE_SECONDS, so that a payment does not spend a round trip to PostgreSQL on who is
asking. Revoking a key, or any change to its merchant (suspension, a flag), forgets the
merchant's keys at once, when it is saved and again when it commits (a request that read the
row just before the commit cannot put the old row back for longer than that)."""

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from merchants.models import ApiKey, Merchant

_PREFIX = "merchant-api-key:"


def api_key_active(digest: str) -> ApiKey | None:
    """The unrevoked key whose secret has this digest, with its merchant and payable account."""
    cached = cache.get(_PREFIX + digest)
    if cached is not None:
        return cached
    key = (
        ApiKey.objects.select_related("merchant__payable_account")
        .filter(digest=digest, revoked_at__isnull=True)
        .first()
    )
    if key is not None:
        api_key_remember(key)
    return key


def api_key_remember(key: ApiKey) -> None:
    cache.set(_PREFIX + key.digest, key, timeout=settings.API_KEY_CACHE_SECONDS)


def api_keys_forget(merchant_id: int) -> None:
    """Forget the cached keys of a merchant, now and once the current transaction commits."""

    def forget() -> None:
        digests = ApiKey.objects.filter(merchant_id=merchant_id).values_list("digest", flat=True)
        cache.delete_many([_PREFIX + digest for digest in digests])

    forget()
    transaction.on_commit(forget, robust=True)


def forget_keys_on_save(sender, instance: ApiKey | Merchant, **kwargs) -> None:
    """post_save of a key or a merchant (connected in MerchantsConfig.ready())."""
    api_keys_forget(instance.merchant_id if isinstance(instance, ApiKey) else instance.pk)
