import pytest
import yaml
from django.core.management import call_command

from tests.openapi_contract import generate


def test_the_merchant_api_schema_generates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchant_api.urls", fail_on_warn=True, file=str(schema))
    text = schema.read_text()
    assert "/authorizations/{reference}:" in text
    assert "merchantApiKey" in text


def test_every_operation_documents_an_example(tmp_path):
    schema_file = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchant_api.urls", file=str(schema_file))
    schema = yaml.safe_load(schema_file.read_text())
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not any(
            "examples" in content
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        )
    ]
    assert missing == []


def _absent_fields(value, schema: dict, components: dict, where: str) -> list[str]:
    """The properties `schema` declares that `value` leaves out, at any depth."""
    while "oneOf" in schema or "$ref" in schema:
        if "oneOf" in schema:  # how OpenAPI 3.1 writes a nullable object: oneOf: [$ref, null]
            schema = schema["oneOf"][0]
        else:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, list) and "items" in schema:
        return [
            absent
            for index, item in enumerate(value)
            for absent in _absent_fields(item, schema["items"], components, f"{where}[{index}]")
        ]
    if isinstance(value, dict) and "properties" in schema:
        properties = schema["properties"]
        return [f"{where}.{name}" for name in properties if name not in value] + [
            absent
            for name, field in properties.items()
            if name in value
            for absent in _absent_fields(value[name], field, components, f"{where}.{name}")
        ]
    return []


def test_every_response_example_shows_every_field_of_its_response(tmp_path):
    # An example a merchant copies must look like what the API answers, not leave a field out.
    schema_file = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchant_api.urls", file=str(schema_file))
    schema = yaml.safe_load(schema_file.read_text())
    components = schema["components"]["schemas"]
    absent = [
        absent
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        for content in response.get("content", {}).values()
        for name, example in content.get("examples", {}).items()
        for absent in _absent_fields(
            example["value"],
            content["schema"],
            components,
            f"{method.upper()} {path} {status} {name}",
        )
    ]
    assert absent == []


# What a generated client names each operation's function: the resource, then what it does
# (list, retrieve, create, update, delete, or the action), never "retrieve" for a list.
OPERATION_IDS = {
    "merchant": {
        ("get", "/api-keys"): "api_keys_list",
        ("post", "/api-keys"): "api_keys_create",
        ("post", "/api-keys/{key_id}/revoke"): "api_keys_revoke",
        ("post", "/applications"): "applications_create",
        ("get", "/authorizations"): "authorizations_list",
        ("post", "/authorizations"): "authorizations_create",
        ("get", "/authorizations/{reference}"): "authorizations_retrieve",
        ("post", "/authorizations/{reference}/capture"): "authorizations_capture",
        ("post", "/authorizations/{reference}/refunds"): "refunds_create",
        ("post", "/authorizations/{reference}/reverse"): "authorizations_reverse",
        ("get", "/captures"): "captures_list",
        ("get", "/captures/{reference}"): "captures_retrieve",
        ("get", "/refunds"): "refunds_list",
        ("get", "/refunds/{reference}"): "refunds_retrieve",
        ("get", "/reversals"): "reversals_list",
        ("get", "/reversals/{reference}"): "reversals_retrieve",
        ("get", "/settlements"): "settlements_list",
        ("get", "/settlements/{reference}"): "settlements_retrieve",
        ("get", "/settlements/{reference}/statement.csv"): "settlements_statement_csv",
        ("get", "/webhook-endpoints"): "webhook_endpoints_list",
        ("post", "/webhook-endpoints"): "webhook_endpoints_create",
        ("post", "/webhook-endpoints/{endpoint_id}/disable"): "webhook_endpoints_disable",
    },
    "app": {
        ("get", "/aidants"): "aidants_list",
        ("post", "/aidants"): "aidants_create",
        ("delete", "/aidants/{aidant_id}"): "aidants_delete",
        ("post", "/auth/code"): "auth_code_create",
        ("post", "/auth/sign-out"): "auth_sign_out",
        ("post", "/auth/sign-out-everywhere"): "auth_sign_out_everywhere",
        ("post", "/auth/token"): "auth_token_create",
        ("get", "/cards"): "cards_list",
        ("post", "/cards/{reference}/freeze"): "cards_freeze",
        ("post", "/cards/{reference}/report-lost"): "cards_report_lost",
        ("post", "/cards/{reference}/unfreeze"): "cards_unfreeze",
        ("get", "/history"): "history_list",
        ("get", "/history/{reference}"): "history_retrieve",
        ("get", "/me"): "me_retrieve",
        ("patch", "/me"): "me_update",
        ("get", "/notification-preferences"): "notification_preferences_retrieve",
        ("put", "/notification-preferences"): "notification_preferences_update",
        ("post", "/payment-codes"): "payment_codes_create",
        ("get", "/pockets"): "pockets_list",
        ("get", "/pockets/{pocket_id}"): "pockets_retrieve",
        ("get", "/pockets/{pocket_id}/merchants"): "pockets_merchants_list",
        ("post", "/push-subscriptions"): "push_subscriptions_create",
        ("delete", "/push-subscriptions"): "push_subscriptions_delete",
    },
}


@pytest.mark.parametrize("api", ["merchant", "app"])
def test_operation_ids_read_as_function_names(api, tmp_path):
    document = generate(api, tmp_path / "schema.yaml")
    ids = {
        (method, path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert ids == OPERATION_IDS[api]
