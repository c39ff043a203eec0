"""What the merchants domain announces, for the faces to act on (see wallet/signals.py): sent
inside the transaction that did the thing."""

from django.dispatch import Signal

# An operator approved a merchant that was not approved before: `merchant`.
merchant_approved = Signal()
