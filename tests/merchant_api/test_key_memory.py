"""The API keys each process holds in memory (merchants/api_keys.py): read from the shared cache
or the database once, then from memory while the keys' generation, read in the round trip that
counts the request's rate, is the one they were read under; a revocation, a suspension or a
flag is seen at the next request all the same."""

import pytest
from django.core.cache import cache

from merchants import api_keys
from merchants.services import api_key_revoke, merchant_flag, merchant_suspend


@pytest.fixture
def reads(monkeypatch):
    """The keys read from the shared cache or the database, by digest."""
    seen = []
    original = api_keys._shared

    def counted(digest):
        seen.append(digest)
        return original(digest)

    monkeypatch.setattr(api_keys, "_shared", counted)
    return seen


def test_a_key_is_read_once_then_held_in_memory(api, reads):
    # The first request finds no generation (an empty cache) and starts one.
    assert [api.read("/authorizations").status_code for _ in range(4)] == [200] * 4
    assert len(reads) == 2
    assert cache.get(api_keys.GENERATION) is not None


def test_a_held_copy_is_the_request_s_own(api):
    for _ in range(2):
        assert api.read("/authorizations").status_code == 200
    digest = api.merchant.api_keys.get().digest
    generation = cache.get(api_keys.GENERATION)
    first = api_keys.api_key_active(digest, generation=generation)
    first.merchant.legal_name = "changed by one request"

    second = api_keys.api_key_active(digest, generation=generation)

    assert second.merchant.legal_name == api.merchant.legal_name


def test_a_revoked_key_held_in_memory_is_refused_at_the_next_request(api, reads):
    for _ in range(3):
        assert api.read("/authorizations").status_code == 200
    api_key_revoke(key=api.merchant.api_keys.get())

    refused = api.read("/authorizations")

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"


def test_a_suspended_merchant_held_in_memory_is_refused_at_the_next_request(api):
    for _ in range(3):
        assert api.read("/authorizations").status_code == 200
    merchant_suspend(merchant=api.merchant)

    assert api.read("/authorizations").status_code == 403


def test_a_flag_set_by_update_still_changes_the_generation(api):
    for _ in range(2):
        assert api.read("/authorizations").status_code == 200
    before = cache.get(api_keys.GENERATION)

    merchant_flag(merchant=api.merchant, reason="test")

    assert cache.get(api_keys.GENERATION) not in (None, before)


def test_a_key_read_before_a_forget_is_not_held_under_the_new_generation(api, reads):
    digest = api.merchant.api_keys.get().digest
    assert api.read("/authorizations").status_code == 200  # starts the generation
    old = cache.get(api_keys.GENERATION)
    api_keys.api_keys_forget(api.merchant.pk)  # between the generation's read and the key's

    api_keys.api_key_active(digest, generation=old)
    api_keys.api_key_active(digest, generation=cache.get(api_keys.GENERATION))

    assert reads[-2:] == [digest, digest]
