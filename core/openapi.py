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
