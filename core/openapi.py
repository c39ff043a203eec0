"""drf-spectacular hooks shared by the two APIs' schemas (settings SPECTACULAR_SETTINGS)."""

from typing import Any


def require_output_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Mark every property of an answer's component required. DRF writes each field of an
    output serializer on every answer (null when it has no value), but drf-spectacular leaves a
    field with a model default or `default=None` optional, and a generated client then types it
    as maybe-absent. Request components (suffix "Request", COMPONENT_SPLIT_REQUEST) keep their
    optional fields."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") or "properties" not in component:
            continue
        component["required"] = list(component["properties"])
    return result


ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "The language of the answer's messages (error messages, reasons): fr or "
    "en; French when absent or when neither is asked for.",
    "schema": {"type": "string", "examples": ["fr", "en", "en-GB,en;q=0.9"]},
}
RETRY_AFTER = {
    "description": "Whole seconds to wait before retrying (RFC 9110).",
    "schema": {"type": "integer", "minimum": 0},
}
IDEMPOTENT_REPLAYED = {
    "description": "`true` when this answer is the stored answer to an earlier request with the "
    "same Idempotency-Key and body (nothing was done again); absent on a first answer.",
    "schema": {"type": "string", "enum": ["true"]},
}


def document_shared_headers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Headers every operation shares, which DRF sets outside the views drf-spectacular
    reads: Accept-Language (LocaleMiddleware), Retry-After on 429 and 503 (throttles, the
    database unavailable) and Idempotent-Replayed on an answer replayed for an
    Idempotency-Key."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            # Any Accept-Language is taken (an unknown one reads as French), so one permissive
            # definition replaces a view's own enum of it.
            parameters = [
                p for p in operation.get("parameters", []) if p.get("name") != "Accept-Language"
            ]
            operation["parameters"] = [*parameters, ACCEPT_LANGUAGE]
            names = {parameter.get("name") for parameter in parameters}
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                if status in ("429", "503"):
                    headers["Retry-After"] = RETRY_AFTER
                if status.startswith("2") and "Idempotency-Key" in names:
                    headers["Idempotent-Replayed"] = IDEMPOTENT_REPLAYED
                if not headers:
                    del response["headers"]
    return result
