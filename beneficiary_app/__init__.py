"""The beneficiary app's REST API, /api/app/v1/: sign-in by one-time code, app tokens, aidants
(social workers a beneficiary lets see their wallet, read-only), and the wallet as the app shows
it: pockets with their rules in plain words, history, where to spend, cards, payment codes.

Every object is reached through the token's wallet: another wallet's id answers 404."""
