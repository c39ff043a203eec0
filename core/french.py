"""French articles before proper names of organisations and aid: "de la part du Département
de l'Isère", "Où utiliser l'Aide alimentaire ?". French puts an article before such names and
contracts it with the preposition before it (de + le = du); English puts none.

The gender comes from the name's first word, for the words funders and programs start with; a
name starting with another word gets no article ("de Pôle emploi"), which reads as a proper
name and is never wrong."""

import unicodedata

from django.utils.translation import get_language

MASCULINE = frozenset(
    {"departement", "conseil", "centre", "ccas", "cias", "fonds", "secours", "pass", "cheque",
     "bon", "dispositif", "programme", "service", "syndicat"}
)  # fmt: skip
FEMININE = frozenset(
    {"aide", "caisse", "caf", "cpam", "msa", "carf", "ville", "mairie", "metropole",
     "mutuelle", "region", "commune", "communaute", "carte", "allocation", "prime",
     "collectivite", "agglomeration", "bourse", "epicerie", "association"}
)  # fmt: skip
_VOWELS = "aeiouyh"


def _plain(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def with_article(name: str, preposition: str = "") -> str:
    """`name` with its French article, contracted with `preposition` ("", "de" or "à"):
    with_article("Aide alimentaire") is "l'Aide alimentaire", with_article("Département de
    l'Isère", "de") is "du Département de l'Isère", with_article("Pôle emploi", "de") is "de
    Pôle emploi"."""
    first = _plain(name.split(maxsplit=1)[0]) if name.strip() else ""
    if first in MASCULINE | FEMININE and first[:1] in _VOWELS:
        # The straight apostrophe of the names themselves ("Département de l'Isère").
        article = "l'"
        return f"{preposition} {article}{name}".strip() if preposition else f"{article}{name}"
    if first in MASCULINE:
        article = {"": "le", "de": "du", "à": "au"}[preposition]
        return f"{article} {name}"
    if first in FEMININE:
        return f"{preposition} la {name}".strip()
    return f"{preposition} {name}".strip()


def for_sentence(name: str, preposition: str = "") -> str:
    """`name` as a sentence in the active language puts it: with its article in French, as it
    is in English. The translated sentence then leaves the article (and the preposition
    joined to it) to this function: "De la part %(funder)s", "Where can I use %(aid)s?"."""
    if (get_language() or "fr").split("-")[0] != "fr":
        return name
    return with_article(name, preposition)
