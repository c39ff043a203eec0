"""Path converters of the APIs."""

from django.urls import register_converter


class ReferenceConverter:
    """An object's public reference (auth_…, card_…, STL-…): letters, digits, "_" and "-". A
    path with anything else (a NUL byte, which PostgreSQL cannot compare, a quote, a dot) names
    no object and answers 404 before any query."""

    regex = "[A-Za-z0-9_-]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "ref")
