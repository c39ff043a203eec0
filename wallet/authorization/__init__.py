"""The authorization engine: normalize a payment, check each pocket's rules, split, decide."""
