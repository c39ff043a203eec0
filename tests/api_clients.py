"""A test client for the merchant API, whose every POST must carry an Idempotency-Key."""

import uuid

from rest_framework.test import APIClient


class IdempotentClient(APIClient):
    """Sends a fresh Idempotency-Key with each POST that does not bring its own, as a
    merchant's client does: tests about something else need not spell one out."""

    def request(self, **request):
        if request.get("REQUEST_METHOD") == "POST":
            request.setdefault("HTTP_IDEMPOTENCY_KEY", str(uuid.uuid4()))
        return super().request(**request)
