"""What the wallet domain announces, for the floors above it to act on: a channel or a face
connects its receiver in its AppConfig.ready(), so the wallet never imports one. Each signal is
sent inside the transaction that did the thing; a receiver that must wait for the commit says
so with transaction.on_commit()."""

from django.dispatch import Signal

# use_caching: the receivers are looked up once per sender, not at each payment (Django clears
# the cache when a receiver connects or disconnects).
# A payment decision was recorded for the first time (never on a replay): `decision`.
decision_recorded = Signal(use_caching=True)
# Captures of a wallet's holds were posted (by any channel): `captures`, ledger transfers.
captures_posted = Signal()
