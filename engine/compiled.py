"""Rules compiled once and kept in the process: parsing and validating a rules document
(PocketRules.from_dict) cost more Python time per pocket than the database spent on the whole
read. The key is the documents' text as stored with the validity bounds, so a changed rule is a
new key and is seen at once, by every process, without any version to bump or cache to clear;
PocketRules is frozen, so one object is safely shared by every payment that reads it."""

import json
from datetime import datetime
from functools import lru_cache

from engine.rules import PocketRules, merge_rules

# Distinct (program, allocation) rule texts alive at once: programs times their allocation
# overrides, a few thousand at most; an entry is a few kilobytes.
_ENTRIES = 4096


@lru_cache(maxsize=_ENTRIES)
def compiled_rules(
    program_rules: str | None,
    allocation_rules: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> PocketRules:
    """The rules of a pocket from its program's and its allocation's rules documents, as the
    JSON text PostgreSQL returns (None for SQL NULL)."""
    return PocketRules.from_dict(
        merge_rules(
            json.loads(program_rules) if program_rules else None,
            json.loads(allocation_rules) if allocation_rules else None,
        ),
        valid_from=valid_from,
        valid_until=valid_until,
    )
