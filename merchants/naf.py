"""What a shop's activity code (NAF, from the company register) suggests: its merchant category
code, and the kinds of aid (the engine's named MCC groups) it will likely accept. Only a
suggestion: the shop confirms or corrects it, an operator checks it before approval."""

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from engine.categories import GROUPS

_TABLE = Path(__file__).parent / "data" / "naf_mcc.csv"


@dataclass(frozen=True)
class NafSuggestion:
    naf: str
    label: str
    mcc: str
    groups: tuple[str, ...]


def naf_normalize(code: str) -> str:
    """ "4711F", "47.11f", " 47.11F " -> "47.11F" (INSEE's own spelling)."""
    compact = code.strip().upper().replace(".", "").replace(" ", "")
    return f"{compact[:2]}.{compact[2:]}" if len(compact) > 2 else compact


@cache
def _table() -> dict[str, tuple[str, str]]:
    with _TABLE.open(encoding="utf-8") as file:
        return {row["naf"]: (row["label"], row["mcc"]) for row in csv.DictReader(file)}


def naf_suggestion(code: str) -> NafSuggestion | None:
    """The line of a NAF sub-class (47.11F), or of a class (47.11) by its first sub-class;
    None for a code the table does not know."""
    naf = naf_normalize(code)
    table = _table()
    if naf not in table:
        naf = next((known for known in table if known[:5] == naf[:5] and len(naf) == 5), "")
    if not naf:
        return None
    label, mcc = table[naf]
    groups = tuple(name for name, codes in GROUPS.items() if mcc in codes)
    return NafSuggestion(naf=naf, label=label, mcc=mcc, groups=groups)
