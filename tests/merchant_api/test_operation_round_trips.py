"""What a capture and a refund send the database through HTTP (issue 19, part 5): pinned so
that a statement added back to either path is seen, with the answer and the money checked."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.models import Transfer
from merchants.payments import decision_captures
from wallet.models import Decision

pytestmark = pytest.mark.django_db(transaction=True)

# BEGIN and COMMIT included, as Django logs them. On PostgreSQL (merchants/hot_path.py): the
# stored answer's lookup, the authorization, BEGIN, the wallet's lock and one read under it in
# one message, one write with the stored answer, COMMIT (4 round trips: BEGIN goes with the
# lock, COMMIT with the write). SQLite runs the ORM's path (no network between its
# statements), with one upsert each of the pocket's spending per period since part 7 (20 and 24
# before). Before issue 19's part 5: 22 and 25; before the fast path: 20 and 24.
CAPTURE, REFUND = (6, 6) if connection.vendor == "postgresql" else (21, 25)


def test_a_capture_and_a_refund_cost_at_most_their_statements(api, authorize):
    api.send(f"/authorizations/{authorize(100)['id']}/capture", {})  # the key is cached
    reference = authorize(300)["id"]

    with CaptureQueriesContext(connection) as sent:
        captured = api.send(f"/authorizations/{reference}/capture", {"amount": 200})
    assert captured.status_code == 201, captured.content
    assert len(sent.captured_queries) <= CAPTURE, [q["sql"] for q in sent.captured_queries]

    with CaptureQueriesContext(connection) as sent:
        refunded = api.send(f"/authorizations/{reference}/refunds", {"amount": 150})
    assert refunded.status_code == 201, refunded.content
    assert len(sent.captured_queries) <= REFUND, [q["sql"] for q in sent.captured_queries]


def test_a_decisions_captures_carry_what_was_refunded_as_integers(api, authorize):
    reference = authorize(300)["id"]
    api.send(f"/authorizations/{reference}/capture", {"amount": 200})
    decision = Decision.objects.get(reference=reference)
    (fresh,) = decision_captures(decision)
    assert (fresh.kind, fresh.amount, fresh.refunded) == (Transfer.Kind.CAPTURE, 200, None)

    api.send(f"/authorizations/{reference}/refunds", {"amount": 150})
    api.send(f"/authorizations/{reference}/refunds", {"amount": 30})
    (capture,) = decision_captures(decision)
    assert capture.refunded == 180 and type(capture.refunded) is int
    refused = api.send(f"/authorizations/{reference}/refunds", {"amount": 21})
    assert refused.status_code == 422
    assert api.send(f"/authorizations/{reference}/refunds", {"amount": 20}).status_code == 201
