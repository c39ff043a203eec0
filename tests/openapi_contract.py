"""The two APIs' OpenAPI 3.1 documents read as a strict integrator's tool reads them: JSON
Schema 2020-12 with every object closed (no property the schema does not declare), so an
undocumented field or a missing required one fails, not only a wrong type."""

import copy

import yaml
from django.core.management import call_command
from jsonschema import Draft202012Validator, FormatChecker

APIS = {
    "merchant": {"urlconf": "merchant_api.urls"},
    "app": {
        "urlconf": "beneficiary_app.urls",
        "custom_settings": "beneficiary_app.urls.SCHEMA_SETTINGS",
    },
}


def generate(api: str, path, **options) -> dict:
    call_command("spectacular", file=str(path), **APIS[api], **options)
    return yaml.safe_load(path.read_text())


def _closed(schema):
    """`schema` with every object that lists its properties closed to any other property."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {name: _closed(value) for name, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


class StrictValidator:
    """Validates answers against a document's schemas, closed objects and formats checked."""

    def __init__(self, document: dict):
        self.document = document
        self.components = _closed(copy.deepcopy(document.get("components", {})))

    def errors(self, value, schema: dict) -> list[str]:
        root = {**_closed(copy.deepcopy(schema)), "components": self.components}
        validator = Draft202012Validator(root, format_checker=FormatChecker())
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(value)
        ]

    def response_schema(self, path: str, method: str, status: int | str, media: str) -> dict:
        responses = self.document["paths"][path][method.lower()]["responses"]
        return responses[str(status)]["content"][media]["schema"]
