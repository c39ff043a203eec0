"""Phone numbers as people read them: a French number in its national form, in pairs
("06 70 00 00 22"), never in the E.164 form the database keeps ("+33670000022")."""

import phonenumbers


def format_phone(number: object) -> str:
    """`number` (a PhoneNumber of django-phonenumber-field, or text in any form) as people
    dial it from France: national form for a French number, international otherwise; "" for
    an empty or unreadable one."""
    text = str(getattr(number, "as_e164", number) or "")
    if not text:
        return ""
    try:
        parsed = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException:
        return text
    form = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 33
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, form)
