"""The beneficiary app API, /api/app/v1/: one module per resource, one class per operation.
Views parse input, call one service or selector, shape output; each operation has its own small
input and output serializers and its OpenAPI description and examples beside it.

Every object is looked up through the token's wallet, so another wallet's pocket, card or
payment answers 404. An aidant's token is read-only: every write answers 403 read_only.
Amounts are integers of minor units, each with a `_display` twin formatted in the request's
language (Accept-Language: French by default, English)."""
