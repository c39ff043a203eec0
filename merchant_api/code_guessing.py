"""Wrong payment codes sent through the merchant API, counted per merchant (all its API keys
together: a new key buys no new tries) and for the whole platform (a brake on a spray spread over
many merchants). Each limit has its own fixed window; past a limit, code payments answer 429 with
Retry-After until the window ends. Why these caps bound a guesser's chances: see
wallet/payment_codes.py.

The counts live in the cache (shared by every server process when CACHE_URL is Redis): they are
throttles, not records. A merchant that reaches its limit is flagged for an operator's review,
which is recorded on the merchant."""

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from merchants.models import Merchant
from merchants.services import merchant_flag

logger = logging.getLogger(__name__)


class MerchantCodeGuessingThrottled(DomainError):
    code = "payment_code_attempts_exceeded"
    status = 429
    default_message = _("Too many wrong payment codes were sent by this merchant. Try again later.")


class PlatformCodeGuessingThrottled(DomainError):
    code = "payment_code_attempts_paused"
    status = 429
    default_message = _(
        "Payment codes are paused for a few minutes: too many wrong codes were sent to the "
        "platform. Try again later."
    )


class _Window:
    """A count of failures in fixed windows of `seconds`: the current window's key in the cache."""

    def __init__(self, name: str, seconds: int):
        self.seconds = seconds
        now = time.time()
        self.key = f"payment-code-failures:{name}:{int(now // seconds)}"
        self.retry_after = max(1, int(seconds - now % seconds))

    def add_one(self) -> int:
        if cache.add(self.key, 1, timeout=self.seconds):
            return 1
        try:
            return cache.incr(self.key)
        except ValueError:  # evicted since add(): start again from this failure
            cache.add(self.key, 1, timeout=self.seconds)
            return 1


class _Windows(NamedTuple):
    """The merchant's window and the platform's, at one instant."""

    merchant: _Window
    platform: _Window

    @property
    def keys(self) -> tuple[str, str]:
        """The cache keys of the two counts PaymentCodeGuessing.check() reads."""
        return self.merchant.key, self.platform.key


def _windows(merchant_id: int) -> _Windows:
    """The merchant's window and the platform's, at this instant."""
    return _Windows(
        _Window(f"merchant:{merchant_id}", settings.PAYMENT_CODE_FAILURE_WINDOW_SECONDS),
        _Window("platform", settings.PAYMENT_CODE_PLATFORM_FAILURE_WINDOW_SECONDS),
    )


def code_guessing_keys(merchant_id: int) -> tuple[str, str]:
    """The keys of the counts PaymentCodeGuessing.check() reads for the merchant of this id,
    before the merchant is read: for the request's first round trip to read them."""
    return _windows(merchant_id).keys


class PaymentCodeGuessing:
    """The guard of a merchant's code payments: check() before a code is tried, count_failure()
    after a wrong one."""

    def __init__(self, merchant: Merchant):
        self.merchant = merchant
        # One instant for the whole request: the keys read are those counted.
        self.windows = _windows(merchant.pk)

    def check(self, read: Mapping[str, int] = MappingProxyType({})) -> None:
        """Refuse when a count is at its limit. `read`: counts already read by this request,
        by cache key (merchant_api/throttles.py: `counted_request`, in the round trip of the
        key's rate); when they are not those of this request's windows (the key's first
        request in this process, a window that turned in between), both are read here, in one
        round trip."""
        keys = self.windows.keys
        counts = read if all(key in read for key in keys) else cache.get_many(keys)
        merchant_window, platform_window = self.windows
        if counts.get(merchant_window.key, 0) >= settings.PAYMENT_CODE_FAILURES_PER_MERCHANT:
            raise MerchantCodeGuessingThrottled(
                field="payment_code", retry_after=merchant_window.retry_after
            )
        if counts.get(platform_window.key, 0) >= settings.PAYMENT_CODE_FAILURES_PLATFORM:
            raise PlatformCodeGuessingThrottled(
                field="payment_code", retry_after=platform_window.retry_after
            )

    def count_failure(self) -> None:
        limit = settings.PAYMENT_CODE_FAILURES_PER_MERCHANT
        merchant_window, platform_window = self.windows
        if merchant_window.add_one() == limit:
            merchant_flag(
                merchant=self.merchant,
                reason=f"sent {limit} wrong payment codes within {merchant_window.seconds} seconds",
            )
        if platform_window.add_one() == settings.PAYMENT_CODE_FAILURES_PLATFORM:
            logger.warning(
                "payment codes paused for every merchant: %s wrong codes within %s seconds",
                settings.PAYMENT_CODE_FAILURES_PLATFORM,
                platform_window.seconds,
            )
