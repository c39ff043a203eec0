"""Types shared by the floors."""

from typing import Any

# A JSON object as Python holds it (a JSONField's value, a parsed rules document, the details of
# a decision): its values are whatever JSON allows, so they are Any.
JSONDict = dict[str, Any]
