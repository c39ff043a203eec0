"""Logging filters: what no log may hold, whatever a client sends."""

import logging
import re
from datetime import date, time
from typing import Any

import orjson
from pythonjsonlogger.json import JsonFormatter

# 13 to 19 digits, maybe in groups: the length of a card number.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# Our card references and app tokens, merchant API keys, webhook signing secrets: a prefix and
# a random tail (secrets.token_urlsafe). A client puts them in URLs ("Forbidden:
# /api/app/v1/cards/card_…/freeze"), a provider quotes them in an error.
_SECRET = re.compile(
    r"(?<![A-Za-z0-9_-])(card_|app_|sk_live_|sk_test_|whsec_)([A-Za-z0-9_-]{16,})(?![A-Za-z0-9_-])"
)
# A tail of lower-case words is a name in the code ("app_notification_preferences_set"), which
# tracebacks show; token_urlsafe's tails have capitals or digits.
_IDENTIFIER = re.compile(r"[a-z_]+")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_card_number(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"••••{digits[-4:]}" if _luhn_valid(digits) else match.group()


def _mask_secret(match: re.Match[str]) -> str:
    prefix, tail = match.groups()
    if _IDENTIFIER.fullmatch(tail):
        return match.group()
    return f"{prefix}…{tail[-4:]}"


# The shortest text either pattern matches: 13 digits; a prefix and 16 characters.
_SHORTEST_MATCH = 13


def redact(text: str) -> str:
    """`text` with card numbers and secrets masked: the last 4 characters only, after the
    prefix that says what the secret was ("card_…1a2b", "••••4242")."""
    if len(text) < _SHORTEST_MATCH:
        # Most of a log line's fields ("INFO", "approved", "EUR"): no regex run for them.
        return text
    return _SECRET.sub(_mask_secret, _DIGIT_RUN.sub(_mask_card_number, text))


# Set on a record by RedactSecrets: its message, as masked. The JSON formatter then writes it
# without masking it again, and never writes the attribute itself.
_MASKED_MESSAGE = "redacted_message"


class RedactSecrets(logging.Filter):
    """Masks what could be a card number (a Luhn-valid run of 13 to 19 digits), a card
    reference, an app token, an API key or a webhook secret in a record: in its message once
    its arguments are put in, and in the traceback and stack it carries. A client that puts one
    in a URL must not get it written to the logs ("Not Found: /...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        setattr(record, _MASKED_MESSAGE, masked)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set: the traceback is written masked.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float | date | time):
        return value  # written as JSON numbers, true/false, null, ISO dates
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    # Anything else would be written as its str(): Django's request log passes the request,
    # whose repr holds the path.
    return redact(str(value))


class RedactedJsonFormatter(JsonFormatter):
    """One JSON object per line (python-json-logger), for production's log collectors. Masked
    field by field, not only the message RedactSecrets sees: a record's extra fields are
    written too (django.request's `request`, whose repr holds the path), and the formatter
    writes the traceback afresh from the exception rather than from the masked text.

    Every payment writes a line (operations/receivers.py), so it is made cheaply: the message
    RedactSecrets masked already is not masked again, and orjson writes the line (the same
    fields and values as the json module's, without the spaces after `:` and `,`): 33 -> 12 µs
    a line (BENCHMARKS.md, issue 19 part 9)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skip_fields.add(_MASKED_MESSAGE)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        masked = getattr(record, _MASKED_MESSAGE, None)
        for key, value in log_data.items():
            # The message as the filter masked it (the formatter's record.message, from the
            # same msg and args) is written as is.
            if key != "message" or value != masked:
                log_data[key] = _redacted(value)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        try:
            return orjson.dumps(log_data, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:
            # What orjson refuses (an integer beyond 64 bits) the json module writes.
            return super().jsonify_log_record(log_data)
