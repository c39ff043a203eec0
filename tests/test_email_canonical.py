"""The one canonical form of an email address (core.validators.email_canonical), in which
beneficiaries, aidants and staff are stored and compared with "="."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from core.validators import email_canonical


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("sam@gmail.com", "sam@gmail.com"),
        ("  Sam.Martin@GMAIL.com ", "sam.martin@gmail.com"),
        ("marie@Bücher.DE", "marie@xn--bcher-kva.de"),
        ("marie@xn--bcher-kva.de", "marie@xn--bcher-kva.de"),
        # a dotless i (U+0131) names another domain, which anyone can register
        ("sam@gma\u0131l.com", "sam@xn--gmal-nza.com"),
        # full-width letters are the same domain (NFKC)
        ("sam@\uff47\uff4d\uff41\uff49\uff4c.com", "sam@gmail.com"),
        # IDNA 2008 keeps ß: straße.de is not strasse.de
        ("hans@straße.de", "hans@xn--strae-oqa.de"),
    ],
)
def test_an_address_becomes_its_canonical_form(typed, canonical):
    assert email_canonical(typed) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        "\u017fam@gmail.com",  # long s
        "sam\u0131@gmail.com",  # dotless i
        "\u212aim@gmail.com",  # Kelvin sign, which re.IGNORECASE matches with k
        "élodie@example.org",
        "\uff53am@gmail.com",  # full-width s
    ],
)
def test_a_non_ascii_part_before_the_at_sign_is_refused(typed):
    with pytest.raises(ValidationError) as refused:
        email_canonical(typed)

    assert refused.value.code == "non_ascii_email"


@pytest.mark.parametrize(
    "typed", ["", "sam", "@gmail.com", "sam@", "sam@gmail..com", "sam@☃.net", "a b@example.org"]
)
def test_what_is_not_an_address_is_refused(typed):
    with pytest.raises(ValidationError) as refused:
        email_canonical(typed)

    assert refused.value.code == "invalid_email"


def test_an_address_too_long_to_deliver_is_refused():
    with pytest.raises(ValidationError):
        email_canonical(f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 63}.org")


_ADDRESSES = st.one_of(
    st.text(),
    st.builds(
        "{}@{}".format,
        st.text(min_size=1, max_size=30),
        st.text(min_size=1, max_size=40),
    ),
    st.emails().map(str.upper),
    st.emails(),
)


@given(_ADDRESSES)
def test_a_canonical_address_is_ascii_and_canonical_again(text):
    try:
        canonical = email_canonical(text)
    except ValidationError:
        return
    assert canonical.isascii()
    assert email_canonical(canonical) == canonical
