"""Logging filters: what no log may hold, whatever a client sends."""

import logging
import re

# 13 to 19 digits, maybe in groups: the length of a card number.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"••••{digits[-4:]}" if _luhn_valid(digits) else match.group()


class RedactCardNumbers(logging.Filter):
    """Masks what could be a card number (a Luhn-valid run of 13 to 19 digits) in a record: a
    client that puts one in a URL must not get it written to the logs ("Not Found: /...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _DIGIT_RUN.sub(_mask, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
