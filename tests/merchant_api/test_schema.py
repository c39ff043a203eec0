import yaml
from django.core.management import call_command


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
