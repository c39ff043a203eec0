"""The normalized authorization request: one shape for every channel.

The merchant's place and category come from our registered merchant (API channel) or from the
card network's merchant data (card channel), never from fields the paying client chooses; the
channel adapters build these objects, the rules only read them.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from engine import geo

CHANNELS = ("api", "card")

# The product families a basket line may name, and a program's rules may accept ("products").
# Kept small on purpose: a cashier picks one per line, or splits the basket in two amounts.
PRODUCT_FAMILIES = (
    "food",
    "alcohol",
    "tobacco",
    "hygiene",
    "school_supplies",
    "transport",
    "other",
)

_MCC = re.compile(r"\d{4}")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class MerchantPlace:
    name: str
    mcc: str  # 4 digits, e.g. "5411"
    country: str  # ISO 3166-1 alpha-2, e.g. "FR"
    merchant_id: int | None = None  # our Merchant.pk (API channel); None on the card channel
    network_id: str | None = None  # the card network's merchant id (card channel)
    postcode: str | None = None
    commune_code: str | None = None  # INSEE code, e.g. "38185", "2A004", "97105"
    latitude: float | None = None
    longitude: float | None = None

    def __post_init__(self) -> None:
        # Malformed data here is a bug in a channel adapter, not a decline reason: fail loudly
        # so the adapter's safe path (internal_error) runs instead of a silently wrong verdict.
        if not _MCC.fullmatch(self.mcc):
            raise ValueError(f"MCC must be 4 digits, got {self.mcc!r}")
        if not _COUNTRY.fullmatch(self.country):
            raise ValueError(
                f"country must be ISO 3166-1 alpha-2 in capitals, got {self.country!r}"
            )
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")

    @property
    def departement(self) -> str | None:
        """The département (or overseas collectivity code, see geo) of the shop: from the
        commune code when present, else from a French postcode; None abroad or unknown."""
        if self.commune_code:
            return geo.departement_from_commune(self.commune_code)
        if self.postcode and geo.is_french(self.country):
            return geo.departement_from_postcode(self.postcode)
        return None

    @property
    def has_location(self) -> bool:
        """Whether anything narrower than the country is known about where the shop is."""
        return bool(self.postcode or self.commune_code or self.latitude is not None)


@dataclass(frozen=True)
class BasketLine:
    amount: int  # minor units, > 0
    category: str  # one of PRODUCT_FAMILIES

    def __post_init__(self) -> None:
        # Channel adapters validate lines into 4xx answers first; here it is a bug.
        if self.amount <= 0:
            raise ValueError(f"a basket line's amount must be positive, got {self.amount}")
        if self.category not in PRODUCT_FAMILIES:
            raise ValueError(f"unknown product family {self.category!r}")


@dataclass(frozen=True)
class AuthorizationRequest:
    amount: int  # minor units; decide() refuses <= 0 with a reason code rather than raising
    currency: str  # ISO 4217, e.g. "EUR"
    merchant: MerchantPlace
    at: datetime  # aware
    channel: str  # "api" or "card"
    partial_allowed: bool = False
    # Optional: what the basket holds. Empty: the whole amount is one purchase, as before
    # baskets existed; otherwise the lines add up to the amount.
    lines: tuple[BasketLine, ...] = ()

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("the request time must be timezone-aware")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {self.channel!r}")
        if self.lines and sum(line.amount for line in self.lines) != self.amount:
            raise ValueError("the basket lines must add up to the amount")
