"""Types shared by the floors."""

from typing import Any

# JSON as Python holds it (json.loads, a JSONField's value, a rules document, the details of a
# decision): a value is whatever JSON allows, so it is Any, and these names say it is JSON.
JSONValue = Any
JSONDict = dict[str, JSONValue]
JSONList = list[JSONValue]
