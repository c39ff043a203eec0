"""What the funders domain announces, for the floors above it to act on (see wallet.signals)."""

from django.dispatch import Signal

# Aid was granted: `allocation`, in the transaction that created it.
allocation_granted = Signal()
