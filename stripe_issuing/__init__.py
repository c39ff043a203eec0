"""Cards through Stripe Issuing: cards, Stripe's card events, top-ups and reconciliation."""
