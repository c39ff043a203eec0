"""The French catalogue: complete, compiled, in step with the code, and readable.

French is the default language, and most beneficiaries read nothing else: an untranslated or
stale string reaches them in English. These tests need no database. The completeness check runs
`makemessages` on a temporary copy of the source tree, so it needs GNU gettext (xgettext) and is
skipped without it."""

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, ngettext, npgettext, pgettext

from engine import codes

ROOT = Path(settings.BASE_DIR)
FRENCH_PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
ENGLISH_PO = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"

# What `manage.py makemessages` is run without (see the README): neither the virtualenv nor
# the tests nor the benchmarks are translated.
NOT_EXTRACTED = {".venv", "venv", "tests", "bench", "var", "node_modules", ".git"}


# --- a small .po reader -----------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    def __str__(self) -> str:
        context = f" (context {self.msgctxt!r})" if self.msgctxt is not None else ""
        return f"line {self.line}: {self.msgid!r}{context}"


_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def read_po(path: Path) -> tuple[dict[str, str], list[Entry]]:
    """The header's fields and the entries of a .po file, obsolete (#~) entries left out."""
    entries: list[Entry] = []
    entry, target = Entry(), None

    def finish() -> None:
        nonlocal entry, target
        if target is not None:
            entries.append(entry)
        entry, target = Entry(), None

    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#"):
            if target is not None and target[0].startswith("msgstr"):
                finish()  # a comment after a msgstr starts the next entry
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith('"'):
            assert target is not None, f"{path}:{number}: string outside an entry"
            _append(entry, target, ast.literal_eval(line))
        else:
            match = _KEYWORD.match(line)
            assert match, f"{path}:{number}: cannot read {raw!r}"
            keyword, index, text = match[1], match[2], ast.literal_eval(match[3])
            if keyword in ("msgctxt", "msgid") and target and target[0].startswith("msgstr"):
                finish()
            if not entry.line:
                entry.line = number
            if keyword.startswith("msgstr"):
                target = ("msgstr", int(index or 0))
            else:
                target = (keyword, None)
            _set(entry, target, text)
    finish()

    header = next((e for e in entries if e.msgid == "" and e.msgctxt is None), None)
    assert header is not None, f"{path}: no header entry"
    fields = dict(
        line.split(": ", 1) for line in header.msgstr.get(0, "").splitlines() if ": " in line
    )
    return fields, [e for e in entries if e is not header]


def _set(entry: Entry, target: tuple[str, int | None], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] = text
    else:
        setattr(entry, name, text)


def _append(entry: Entry, target: tuple[str, int | None], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] += text
    else:
        setattr(entry, name, getattr(entry, name) + text)


@pytest.fixture(scope="module")
def french() -> list[Entry]:
    return read_po(FRENCH_PO)[1]


# --- the catalogue itself ---------------------------------------------------------------------


def test_the_french_catalogue_declares_its_language_and_plural_rule():
    header, entries = read_po(FRENCH_PO)
    assert entries
    assert header["Language"] == "fr"
    assert header["Content-Type"] == "text/plain; charset=UTF-8"
    assert header["Plural-Forms"].replace(" ", "") == "nplurals=2;plural=(n>1);"


def test_every_french_entry_is_translated_and_checked(french):
    untranslated = [
        str(e) for e in french if not e.msgstr or not all(s.strip() for s in e.msgstr.values())
    ]
    fuzzy = [str(e) for e in french if "fuzzy" in e.flags]
    assert not (untranslated or fuzzy), "\n".join(
        ["untranslated:", *untranslated, "fuzzy (check the translation, remove the flag):", *fuzzy]
    )


def test_plural_entries_have_both_french_forms(french):
    for entry in french:
        if entry.msgid_plural is not None:
            assert sorted(entry.msgstr) == [0, 1], entry


_PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|\{\w*\}")


def test_translations_keep_every_placeholder(french):
    for entry in french:
        for index, text in entry.msgstr.items():
            source = entry.msgid_plural if index and entry.msgid_plural else entry.msgid
            expected = sorted(_PLACEHOLDER.findall(source))
            assert sorted(_PLACEHOLDER.findall(text)) == expected, entry


def test_french_typography(french):
    """A no-break space before : ; ! ? and inside « », never an ordinary one that lets the
    punctuation wrap to the start of a line on a phone screen."""
    for entry in french:
        for text in entry.msgstr.values():
            assert not re.search(r" [:;!?»]|« ", text), f"{entry}: {text!r}"


def test_the_english_catalogue_is_valid_and_left_to_the_source_text():
    header, entries = read_po(ENGLISH_PO)
    assert header["Language"] == "en"
    assert {e.key for e in entries} == {e.key for e in read_po(FRENCH_PO)[1]}
    assert all(not any(e.msgstr.values()) for e in entries)
    assert (ENGLISH_PO.with_suffix(".mo")).is_file()


# --- the compiled catalogue -------------------------------------------------------------------


def test_the_compiled_catalogue_matches_the_po_file(french):
    """A .po edited without `manage.py compilemessages` would ship the old or no translation."""
    stale = []
    with translation.override("fr"):
        for entry in french:
            if entry.msgid_plural is None:
                got = (
                    pgettext(entry.msgctxt, entry.msgid)
                    if entry.msgctxt is not None
                    else gettext(entry.msgid)
                )
                expected = [entry.msgstr[0]]
                got = [got]
            else:
                forms = [(1, 0), (2, 1)]  # French: singular for 0 and 1, plural from 2
                if entry.msgctxt is not None:
                    got = [
                        npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, n)
                        for n, _ in forms
                    ]
                else:
                    got = [ngettext(entry.msgid, entry.msgid_plural, n) for n, _ in forms]
                expected = [entry.msgstr[i] for _, i in forms]
            if got != expected:
                stale.append(f"{entry}: compiled {got!r}, .po {expected!r}")
    assert not stale, "run manage.py compilemessages -l fr -l en:\n" + "\n".join(stale)


# --- the catalogue against the code -----------------------------------------------------------


def _copy_sources(destination: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name == "__pycache__" or name.endswith(".mo")}
        if Path(directory) == ROOT:
            skipped |= {name for name in names if name in NOT_EXTRACTED or name.startswith(".")}
        return skipped

    shutil.copytree(ROOT, destination, ignore=ignore)


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is not installed")
def test_every_string_of_the_code_is_in_the_french_catalogue(tmp_path, french):
    """Runs makemessages on a copy of the source tree, as the README says, and compares."""
    tree = tmp_path / "src"
    _copy_sources(tree)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "AIDWALLET_VAR_DIR": str(tmp_path / "var"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-obsolete"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    extracted = {e.key: e for e in read_po(tree / "locale" / "fr" / "LC_MESSAGES" / "django.po")[1]}
    committed = {e.key: e for e in french}
    missing = [str(extracted[key]) for key in sorted(extracted.keys() - committed.keys(), key=str)]
    assert not missing, (
        "strings of the code missing from locale/fr/LC_MESSAGES/django.po; run "
        "manage.py makemessages -l fr -l en --ignore=.venv --ignore=tests --ignore=bench, "
        "translate them, then compilemessages:\n" + "\n".join(missing)
    )
    changed_plurals = [
        str(entry)
        for key, entry in extracted.items()
        if key in committed and entry.msgid_plural != committed[key].msgid_plural
    ]
    assert not changed_plurals, "plural source text changed:\n" + "\n".join(changed_plurals)


# --- what people read -------------------------------------------------------------------------


def test_a_zone_refusal_tells_the_beneficiary_in_french_where_the_aid_works():
    with translation.override("fr"):
        message = codes.beneficiary_message(
            "outside_zone", pocket_name="Aide alimentaire", details={"departements": ["38"]}
        )
    assert message.startswith("Aide alimentaire\u00a0: ce commerce est hors de la zone")
    assert "Isère (38)" in message
    assert "L\u2019application indique où vous pouvez l\u2019utiliser." in message


def test_the_same_refusal_in_english():
    with translation.override("en"):
        message = codes.beneficiary_message(
            "outside_zone", pocket_name="Food aid", details={"departements": ["38"]}
        )
    assert message == (
        "Food aid: this shop is outside the area where this aid can be used: Isère (38). "
        "The app shows where you can use it."
    )


def test_the_shop_is_told_in_french_and_in_english():
    with translation.override("fr"):
        assert codes.merchant_message("insufficient_funds") == (
            "Paiement refusé\u00a0: l\u2019aide du client ne couvre pas ce montant. "
            "Demandez un autre moyen de paiement."
        )
    with translation.override("en"):
        assert codes.merchant_message("insufficient_funds") == (
            "Payment refused: the customer's aid does not cover this amount. "
            "Please ask for another means of payment."
        )


def test_a_partial_approval_reads_as_accepted_in_french():
    with translation.override("fr"):
        merchant = codes.merchant_partial_message(approved=1250, amount=2000, currency="EUR")
        beneficiary = codes.beneficiary_partial_message(
            "insufficient_funds",
            approved=1250,
            amount=2000,
            currency="EUR",
            pocket_name="Aide alimentaire",
            details={"available": 1250, "amount": 2000, "currency": "EUR"},
        )
    assert merchant == (
        "Paiement accepté pour 12,50\u00a0€\u00a0: faites régler le reste (7,50\u00a0€) autrement."
    )
    assert beneficiary == (
        "Votre aide a payé 12,50\u00a0€\u00a0: payez le reste (7,50\u00a0€) avec un autre moyen "
        "de paiement. Aide alimentaire\u00a0: il ne reste pas assez d\u2019argent sur votre aide "
        "pour ce paiement."
    )


def test_a_limit_refusal_in_french_says_what_to_do():
    details = {"limit": "day", "cap": 2500, "used": 1800}
    with translation.override("fr"):
        message = codes.beneficiary_message(
            "limit_exceeded", pocket_name="Aide alimentaire", details=details
        )
    assert message == (
        "Aide alimentaire\u00a0: cette aide permet de payer jusqu\u2019à 25,00\u00a0€ par jour. "
        "Vous avez déjà payé 18,00\u00a0€ aujourd\u2019hui. "
        "Vous pouvez payer le reste avec un autre moyen de paiement."
    )


@pytest.mark.parametrize("code", sorted(codes.REASONS))
def test_every_reason_reads_in_french(code):
    with translation.override("en"):
        english = (
            codes.merchant_message(code),
            codes.beneficiary_message(code, pocket_name="Aide", details={}),
            codes.beneficiary_message(code, details={}),
        )
    with translation.override("fr"):
        merchant = codes.merchant_message(code)
        named = codes.beneficiary_message(code, pocket_name="Aide", details={})
        unnamed = codes.beneficiary_message(code, details={})
    assert merchant != english[0]
    assert merchant.startswith("Paiement ")
    assert named != english[1]
    assert named.startswith("Aide\u00a0: ")
    assert unnamed != english[2]
    assert unnamed[0].isupper()
