"""The merchant API's keys as each request reads them: the key, its merchant and the merchant's
payable account, kept in the cache (Redis in production, shared by every server) for
API_KEY_CACHE_SECONDS, so that a payment does not spend a round trip to PostgreSQL on who is
asking. Revoking a key, or any change to its merchant (suspension, a flag), forgets the
merchant's keys at once, when it is saved and again when it commits (a request that read the
row just before the commit cannot put the old row back for longer than that).

Each process also keeps the keys it read, for LOCAL_SECONDS, under the keys' generation: a
token in the cache that every forget replaces. A caller that read the generation in a round trip
it makes anyway (the merchant API's rate count) gets a key held under the same generation from
memory, with no round trip of its own; a revocation or a suspension, by replacing the token,
sends every process' next request back to the cache and the database. A copy is held (pickled),
so no request sees what another did to its objects."""

import pickle
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from merchants.models import ApiKey, Merchant

_PREFIX = "merchant-api-key:"
GENERATION = "merchant-api-key-generation"
LOCAL_SECONDS = 10.0
# Far more than the keys a platform has; a process never holds more (a flood of digests that
# never were keys holds nothing: only a key found is held).
_LOCAL_MAX = 10_000
# digest -> (the generation read before the key was, when it stops being used, the key pickled,
# its merchant's id)
_local: dict[str, tuple[object, float, bytes, int]] = {}
_UNREAD = object()


def api_key_active(digest: str, *, generation: object = _UNREAD) -> ApiKey | None:
    """The unrevoked key whose secret has this digest, with its merchant and payable account.
    `generation`: the value of GENERATION in the cache (None if it has none) as the caller read
    it just now; without it, this process' memory is not used."""
    if generation is None:
        # None yet (a cache emptied or restarted): start one; this request reads as before.
        cache.add(GENERATION, uuid.uuid4().hex, timeout=None)
    elif generation is not _UNREAD:
        held = _local.get(digest)
        if held is not None and held[0] == generation and held[1] > time.monotonic():
            return pickle.loads(held[2])
    key = _shared(digest)
    if key is not None and generation is not None and generation is not _UNREAD:
        # Held under the generation read before the key: a forget in between has replaced it,
        # so a row read before a revocation is never used after it.
        if len(_local) >= _LOCAL_MAX:
            _local.clear()
        _local[digest] = (
            generation,
            time.monotonic() + LOCAL_SECONDS,
            _pickled(key),
            key.merchant_id,
        )
    return key


def api_key_held_merchant(digest: str) -> int | None:
    """The id of the merchant of the key of `digest` if this process holds the key, whatever
    its generation: a hint, for a caller to read that merchant's counts in the round trip that
    reads the generation, before the key is known to be valid. Never a key: only
    api_key_active gives one."""
    held = _local.get(digest)
    return held[3] if held is not None else None


def _pickled(key: ApiKey) -> bytes:
    return pickle.dumps(key, pickle.HIGHEST_PROTOCOL)


def _shared(digest: str) -> ApiKey | None:
    """The key from the cache every server shares, else from the database."""
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
    # Not held under the generation held before: this copy may have been read under an older
    # one (its last use written by a request that began before a revocation).
    _local.pop(key.digest, None)


def api_keys_forget(merchant_id: int) -> None:
    """Forget the cached keys of a merchant, now and once the current transaction commits."""

    def forget() -> None:
        digests = ApiKey.objects.filter(merchant_id=merchant_id).values_list("digest", flat=True)
        cache.delete_many([_PREFIX + digest for digest in digests])
        # Every process' held keys, not only this merchant's: a change of a merchant or a key
        # is rare, a read of the database after it cheap.
        cache.set(GENERATION, uuid.uuid4().hex, timeout=None)

    forget()
    transaction.on_commit(forget, robust=True)


def forget_keys_on_save(sender, instance: ApiKey | Merchant, **kwargs) -> None:
    """post_save of a key or a merchant (connected in MerchantsConfig.ready())."""
    api_keys_forget(instance.merchant_id if isinstance(instance, ApiKey) else instance.pk)
