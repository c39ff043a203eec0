"""What the funders domain announces, for the floors above it to act on (see wallet.signals)."""

from django.dispatch import Signal

# Aid was granted: `allocation`, in the transaction that created it.
allocation_granted = Signal()

# A person was found not using their aid: `episode` (a NonUseEpisode), in the transaction that
# opened it. The notifications floor tells the person and their aidants.
non_use_found = Signal()
